import { createHash, type KeyObject, verify as nodeVerify } from 'node:crypto';
import { MmogitError } from '../errors.js';
import { type CanonicalValue, canonicalJson } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey } from '../identity/onion.js';
import { publicKeyObject, SIGNING_CONTEXTS, signedBytes } from '../identity/signing.js';
import type { VerifyItem } from './_verify-pool.js';
import { invalid, isoTime, kindProblem, type Visibility } from './entry-kinds.js';

/**
 * The signed entry: one file per post, memory, message or other kind, content-addressed by the SHA-256 of its
 * bytes. Format `mmogit-entry` version 1 (docs/protocol.md §3 (Entries)):
 *
 * ```json
 * {"author":"<hex ed25519>","body":{…},"createdAt":"2025-01-01T00:00:00.000Z","format":"mmogit-entry",
 *  "kind":"memory","signature":"<hex>","version":1,"visibility":"public"}
 * ```
 * The file is the canonical JSON (identity/canonical.ts) of that object plus `\n`; the signature covers the
 * canonical JSON of the object without `signature`, under the `memory-entry/v1` signing context.
 * @module
 */

// The kinds' own rules live in entry-kinds.ts; re-exported here, where callers look for the entry's types.
export {
  DEFAULT_CONFIDENCE,
  MEMORY_LIMITS,
  MEMORY_TYPES,
  type MemoryBody,
  type MemoryInput,
  type MemoryType,
  memoryBody,
  type Visibility,
} from './entry-kinds.js';

export const ENTRY_FORMAT = 'mmogit-entry';
export const ENTRY_VERSION = 1;
/** Largest entry file we write or accept. */
export const MAX_ENTRY_BYTES = 64 * 1024;
/** A signed entry as stored. */
export type Entry = {
  format: typeof ENTRY_FORMAT;
  version: typeof ENTRY_VERSION;
  /** `memory`, `post`, `message`, … (lower-case, `[a-z][a-z0-9-]{0,31}`). */
  kind: string;
  /** Author's Ed25519 public key, lower-case hex. */
  author: string;
  /** ISO 8601 UTC with milliseconds. */
  createdAt: string;
  visibility: Visibility;
  body: { [key: string]: CanonicalValue };
  /** Ed25519 signature, lower-case hex. */
  signature: string;
};

const KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const HEX128_RE = /^[0-9a-f]{128}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Checks a visibility value. */
export function checkVisibility(v: unknown): Visibility {
  if (v === undefined) return 'public';
  if (v !== 'public' && v !== 'private') throw invalid(`visibility must be public or private`);
  return v;
}

/** Checks an entry kind. */
export function checkKind(kind: unknown): string {
  if (typeof kind !== 'string' || !KIND_RE.test(kind)) {
    throw invalid(`entry kind must match ${KIND_RE.source}`, { field: 'kind' });
  }
  return kind;
}

/** A signed entry with its file bytes and id. */
export interface EncodedEntry {
  id: string;
  entry: Entry;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();

/** The content address of an entry: SHA-256 of its file bytes, lower-case hex. */
export function entryId(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The entry's path in the tree: `entries/<h0>/<h1>/<h2>/<id>.json` (16-way fan-out, every tree ≤ 16 dirs). */
export function entryPath(id: string): string[] {
  return ['entries', id[0] as string, id[1] as string, id[2] as string, `${id}.json`];
}

/** Signs an entry of `kind` by `key`. `createdAt` defaults to now. */
export function signEntry(
  key: AgentKey,
  kind: string,
  body: { [key: string]: CanonicalValue },
  options: { visibility?: Visibility; createdAt?: string | Date } = {},
): EncodedEntry {
  const unsigned = {
    format: ENTRY_FORMAT,
    version: ENTRY_VERSION,
    kind: checkKind(kind),
    author: key.publicKeyHex,
    createdAt: isoTime(options.createdAt ?? new Date(), 'createdAt'),
    visibility: checkVisibility(options.visibility),
    body,
  } as const;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('entry body must be an object');
  }
  const unsignedJson = canonicalJson(unsigned);
  const signature = Buffer.from(
    key.sign(SIGNING_CONTEXTS.memoryEntry, encoder.encode(unsignedJson)),
  ).toString('hex');
  const entry: Entry = { ...unsigned, body, signature };
  // Canonical key order puts `signature` right before `version`, the last two fields have fixed shapes, so the
  // full encoding is the unsigned one with the signature spliced in (saves a second canonicalisation).
  const tail = unsignedJson.lastIndexOf(',"version":');
  const bytes = encoder.encode(
    `${unsignedJson.slice(0, tail)},"signature":"${signature}"${unsignedJson.slice(tail)}\n`,
  );
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new MmogitError('ERR_TOO_LARGE', `entry is ${bytes.length} bytes (limit ${MAX_ENTRY_BYTES})`, {
      details: { bytes: bytes.length, limit: MAX_ENTRY_BYTES },
    });
  }
  return { id: entryId(bytes), entry, bytes };
}

/** Result of reading an entry file: `verified` is true only if every check passed. */
export interface DecodedEntry {
  id: string;
  entry: Entry | null;
  verified: boolean;
  /** Why `verified` is false. */
  problem?: string;
}

const keyCache = new Map<string, KeyObject>();
function keyFor(hex: string): KeyObject {
  let k = keyCache.get(hex);
  if (!k) {
    k = publicKeyObject(Buffer.from(hex, 'hex'));
    if (keyCache.size > 4096) keyCache.clear();
    keyCache.set(hex, k);
  }
  return k;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `problem` of an entry decoded with `checkSignature: false` whose other checks all passed. */
export const UNCHECKED = 'signature not checked';

/**
 * Parses and verifies an entry file: size, canonical encoding, id (= SHA-256 of the bytes, when `expectedId` is
 * given), format and version, field shapes, the kind's body rules, and the author's signature. Never throws for
 * bad data: it reports it.
 */
export function decodeEntry(
  bytes: Uint8Array,
  expectedId?: string,
  options: { checkSignature?: boolean } = {},
): DecodedEntry {
  const id = entryId(bytes);
  const fail = (problem: string, entry: Entry | null = null): DecodedEntry => ({
    id,
    entry,
    verified: false,
    problem,
  });
  if (bytes.length > MAX_ENTRY_BYTES) return fail('entry too large');
  if (expectedId !== undefined && expectedId !== id) {
    // Still report what the file claims to be, so a tampered entry shows up under its kind and author.
    return fail('file name is not the SHA-256 of its bytes', decodeEntry(bytes, undefined, options).entry);
  }
  let text: string;
  let parsed: unknown;
  try {
    text = decoder.decode(bytes);
    parsed = JSON.parse(text);
  } catch {
    return fail('not UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('not an object');
  const e = parsed as Partial<Entry> & Record<string, unknown>;
  const keys = Object.keys(e).sort().join(',');
  if (keys !== 'author,body,createdAt,format,kind,signature,version,visibility')
    return fail('unexpected fields');
  if (e.format !== ENTRY_FORMAT || e.version !== ENTRY_VERSION) return fail('unknown format or version');
  if (
    typeof e.kind !== 'string' ||
    !KIND_RE.test(e.kind) ||
    typeof e.author !== 'string' ||
    !HEX64_RE.test(e.author) ||
    typeof e.createdAt !== 'string' ||
    !ISO_RE.test(e.createdAt) ||
    (e.visibility !== 'public' && e.visibility !== 'private') ||
    typeof e.body !== 'object' ||
    e.body === null ||
    Array.isArray(e.body) ||
    typeof e.signature !== 'string' ||
    !HEX128_RE.test(e.signature)
  ) {
    return fail('malformed fields');
  }
  const entry = e as Entry;
  let canonical: string;
  try {
    canonical = canonicalJson(entry);
  } catch {
    return fail('not canonical JSON', entry);
  }
  if (`${canonical}\n` !== text) return fail('not canonical JSON', entry);
  const problem = kindProblem(entry.kind, entry.body, entry.visibility);
  if (problem) return fail(problem, entry);
  if (options.checkSignature === false) return fail(UNCHECKED, entry);
  return verifyEntrySignature(entry) ? { id, entry, verified: true } : fail('bad signature', entry);
}

/**
 * The signature check of a well-formed entry, for batch verification ({@link verifyMany}). With the entry's
 * file bytes (already checked canonical by {@link decodeEntry}) the signed message is cut out of them instead
 * of re-encoded: the top-level `signature` is the last one (it sorts after `body`).
 */
export function signatureItem(entry: Entry, fileBytes?: Uint8Array): VerifyItem {
  const { signature, ...unsigned } = entry;
  let message: Uint8Array | null = null;
  if (fileBytes) {
    const text = decoder.decode(fileBytes);
    const field = `,"signature":"${signature}"`;
    const at = text.lastIndexOf(field);
    if (at > 0) message = encoder.encode(text.slice(0, at) + text.slice(at + field.length, -1));
  }
  return {
    message: signedBytes(SIGNING_CONTEXTS.memoryEntry, message ?? encoder.encode(canonicalJson(unsigned))),
    signature: Buffer.from(signature, 'hex'),
    publicKey: Buffer.from(entry.author, 'hex'),
  };
}

/** Checks only the author's signature of a well-formed entry (see {@link decodeEntry} for the rest). */
export function verifyEntrySignature(entry: Entry): boolean {
  const { signature, ...unsigned } = entry;
  const message = encoder.encode(canonicalJson(unsigned));
  let ok = false;
  try {
    ok = nodeVerify(
      null,
      signedBytes(SIGNING_CONTEXTS.memoryEntry, message),
      keyFor(entry.author),
      Buffer.from(signature, 'hex'),
    );
  } catch {
    ok = false;
  }
  return ok;
}

/** The onion address of an entry's author. */
export function authorOnion(entry: Entry): string {
  return onionFromPublicKey(Buffer.from(entry.author, 'hex'));
}
