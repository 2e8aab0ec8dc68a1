import { createHash } from 'node:crypto';
import { MmogitError } from '../errors.js';

/**
 * Pure models of the three git object kinds mmogit writes: blobs, trees and commits (git's
 * Documentation/gitformat-*.txt; "object format" in Documentation/technical/hash-function-transition.txt).
 * No I/O here: {@link ObjectDb} stores what these functions encode.
 * @module
 */

/** The object types we store. Tags are neither written nor accepted. */
export type ObjectType = 'blob' | 'tree' | 'commit';

/** A git object: its type and its content (without the `<type> <size>\0` header). */
export interface GitObject {
  type: ObjectType;
  content: Uint8Array;
}

/** File modes we write. Git's fsck --strict rejects any other spelling (e.g. a zero-padded `040000`). */
export const MODE_TREE = '40000';
export const MODE_FILE = '100644';

export interface TreeEntry {
  mode: typeof MODE_TREE | typeof MODE_FILE;
  name: string;
  oid: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The bytes git hashes: `<type> <size>\0<content>`. */
export function objectHeader(type: ObjectType, size: number): Uint8Array {
  return encoder.encode(`${type} ${size}\0`);
}

/** SHA-1 object id of `content` as a `type` (lower-case hex). */
export function hashObject(type: ObjectType, content: Uint8Array): string {
  return createHash('sha1').update(objectHeader(type, content.length)).update(content).digest('hex');
}

/**
 * Git's tree order: byte order of names, where a directory sorts as if its name ended in `/`
 * (fsck: "treeNotSorted").
 */
export function compareTreeEntries(a: TreeEntry, b: TreeEntry): number {
  const an = a.mode === MODE_TREE ? `${a.name}/` : a.name;
  const bn = b.mode === MODE_TREE ? `${b.name}/` : b.name;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** Encodes a tree (entries are sorted here; names are ASCII in our layout). */
export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const sorted = [...entries].sort(compareTreeEntries);
  let size = 0;
  const heads = sorted.map((e) => {
    const h = encoder.encode(`${e.mode} ${e.name}\0`);
    size += h.length + 20;
    return h;
  });
  const out = new Uint8Array(size);
  let at = 0;
  sorted.forEach((e, i) => {
    const h = heads[i] as Uint8Array;
    out.set(h, at);
    at += h.length;
    out.set(Buffer.from(e.oid, 'hex'), at);
    at += 20;
  });
  return out;
}

/** Parses a tree. Throws ERR_UNTRUSTED_DATA on any malformed byte (we parse peers' trees too). */
export function parseTree(content: Uint8Array): TreeEntry[] {
  const out: TreeEntry[] = [];
  let at = 0;
  while (at < content.length) {
    const sp = content.indexOf(0x20, at);
    const nul = sp < 0 ? -1 : content.indexOf(0, sp);
    if (sp < 0 || nul < 0 || nul + 21 > content.length) {
      throw new MmogitError('ERR_UNTRUSTED_DATA', 'malformed tree object');
    }
    const mode = decoder.decode(content.subarray(at, sp));
    if (mode !== MODE_TREE && mode !== MODE_FILE) {
      throw new MmogitError('ERR_UNTRUSTED_DATA', `tree entry has unsupported mode ${mode}`);
    }
    const name = decoder.decode(content.subarray(sp + 1, nul));
    const oid = Buffer.from(content.subarray(nul + 1, nul + 21)).toString('hex');
    out.push({ mode, name, oid });
    at = nul + 21;
  }
  return out;
}

/** A commit as we write and accept it: tree, parents, one identity line for author and committer, message. */
export interface Commit {
  tree: string;
  parents: string[];
  /** `Name <email>`, as in git's ident lines. */
  ident: string;
  /** Seconds since the epoch (UTC; we always write `+0000`). */
  time: number;
  message: string;
}

/** Encodes a commit (git's `commit` object: headers, blank line, message). */
export function encodeCommit(c: Commit): Uint8Array {
  const who = `${c.ident} ${c.time} +0000`;
  const lines = [
    `tree ${c.tree}`,
    ...c.parents.map((p) => `parent ${p}`),
    `author ${who}`,
    `committer ${who}`,
  ];
  return encoder.encode(`${lines.join('\n')}\n\n${c.message}`);
}

const OID_RE = /^[0-9a-f]{40}$/;
const IDENT_RE = /^([^<>\n]+ <[^<>\n]*>) (\d{1,12}) ([+-]\d{4})$/;

/**
 * Parses a commit strictly: `tree`, `parent`*, `author`, `committer` and nothing else (no signatures or
 * encodings), then a message. Throws ERR_UNTRUSTED_DATA otherwise.
 */
export function parseCommit(content: Uint8Array): Commit {
  let text: string;
  try {
    text = decoder.decode(content);
  } catch (e) {
    throw new MmogitError('ERR_UNTRUSTED_DATA', 'commit is not UTF-8', { cause: e });
  }
  const split = text.indexOf('\n\n');
  if (split < 0) throw new MmogitError('ERR_UNTRUSTED_DATA', 'commit has no message separator');
  const lines = text.slice(0, split).split('\n');
  const bad = (why: string) => new MmogitError('ERR_UNTRUSTED_DATA', `malformed commit: ${why}`);
  const treeLine = lines.shift() ?? '';
  if (!treeLine.startsWith('tree ') || !OID_RE.test(treeLine.slice(5))) throw bad('tree');
  const parents: string[] = [];
  while (lines[0]?.startsWith('parent ')) {
    const p = (lines.shift() as string).slice(7);
    if (!OID_RE.test(p)) throw bad('parent');
    parents.push(p);
  }
  const author = lines.shift() ?? '';
  const committer = lines.shift() ?? '';
  if (lines.length > 0) throw bad('unexpected header');
  if (!author.startsWith('author ') || !committer.startsWith('committer ')) throw bad('ident');
  const a = IDENT_RE.exec(author.slice(7));
  const c = IDENT_RE.exec(committer.slice(10));
  if (!a || !c) throw bad('ident');
  return {
    tree: treeLine.slice(5),
    parents,
    ident: c[1] as string,
    time: Number(c[2]),
    message: text.slice(split + 2),
  };
}

/** git's empty tree id (SHA-1 of `tree 0\0`). */
export const EMPTY_TREE_OID = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
