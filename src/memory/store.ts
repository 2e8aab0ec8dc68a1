import type { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import git from 'isomorphic-git';
import { MmogitError } from '../errors.js';
import type { CanonicalValue } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey } from '../identity/onion.js';
import {
  type Commit,
  encodeCommit,
  encodeTree,
  MODE_FILE,
  MODE_TREE,
  parseCommit,
  parseTree,
  type TreeEntry,
} from './_git.js';
import { verifyMany } from './_verify-pool.js';
import {
  checkVisibility,
  type DecodedEntry,
  decodeEntry,
  type EncodedEntry,
  type Entry,
  entryPath,
  type MemoryInput,
  type MemoryType,
  memoryBody,
  signatureItem,
  signEntry,
  UNCHECKED,
  type Visibility,
  verifyEntrySignature,
} from './entry.js';
import { makeObject, ObjectDb, type StoredObject } from './odb.js';
import { PRIVATE_REF, PUBLIC_REF, readRef, updateRef } from './refs.js';
import {
  MAX_SHARE_RECIPIENTS,
  type OpenedEnvelope,
  openEnvelope,
  openerFor,
  type Recipient,
  recipientOf,
  SEALED_KIND,
  SHARE_KIND,
  type ShareBody,
  sealEntry,
  shareRecord,
} from './sealed.js';

/** Identity line of every commit a store writes (commit metadata is not trusted; entries carry the signatures). */
export const COMMIT_IDENT = 'mmogit <mmogit@localhost>';
/** How often a commit is retried when another writer moved the ref in between. */
const MAX_REF_RETRIES = 200;

/** A recalled entry: `verified` is true only if the file passed every check, including its signature. */
export interface VerifiedEntry {
  id: string;
  entry: Entry | null;
  verified: boolean;
  problem?: string;
  /** The author's onion address ('' if the entry could not be parsed). */
  author: string;
  kind: string;
  createdAt: string;
  visibility: Visibility;
  /**
   * For a private entry shared with peers: on the author's side, the onions it was shared with; on a
   * recipient's side, its own onion (it was read from an envelope sealed to it).
   */
  sharedWith?: string[];
  /** Id of the `sealed` envelope a shared private entry was opened from (recipient side). */
  envelope?: string;
}

/** Options of {@link MemoryStore.append} and {@link MemoryStore.post}. */
export interface AppendOptions {
  visibility?: Visibility;
  createdAt?: string | Date;
  /** Peers allowed to read this private entry (see {@link MemoryInput.shareWith}); implies `private`. */
  shareWith?: readonly string[];
}

/** Filters for {@link MemoryStore.recall}; all given ones must match. */
export interface RecallFilter {
  kind?: string;
  /** Memory type (implies kind `memory`). */
  type?: MemoryType;
  tag?: string;
  /** Only entries created in the last N hours. */
  sinceHours?: number;
  /** Author's onion address or hex public key. */
  author?: string;
  visibility?: Visibility;
  /** Newest N. */
  limit?: number;
  /** Include memories whose `expiresAt` has passed (default false). */
  includeExpired?: boolean;
  /** Include entries that failed verification (default true: they are reported, flagged `verified: false`). */
  includeUnverified?: boolean;
}

export interface OpenOptions {
  /** Create the repository if it is missing (default true). */
  create?: boolean;
}

interface PendingWrite {
  ref: string;
  entries: EncodedEntry[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Leaf {
  id: string;
  blob: string;
}

/**
 * The agent's memory: a bare git repository of signed entries, one content-addressed file per entry at
 * `entries/<h0>/<h1>/<h2>/<id>.json`. Public entries are on `refs/heads/main` (the branch sync shares), private
 * ones on `refs/heads/private` (never synced). Concurrent writes are coalesced into one commit.
 *
 * @example
 * const store = await MemoryStore.open(join(configDir, 'memory'), key);
 * await store.remember({ type: 'learning', content: 'tor needs 30 s to bootstrap', tags: ['tor'] });
 * const latest = await store.recall({ type: 'learning', limit: 10 });
 */
export class MemoryStore {
  readonly dir: string;
  readonly key: AgentKey;
  /** Object database (shared with the sync protocol). */
  readonly odb: ObjectDb;
  private readonly trees = new Map<string, TreeEntry[]>();
  private readonly parsed = new Map<string, { d: DecodedEntry; bytes: Uint8Array }>();
  private readonly onions = new Map<string, string>();
  /** Opened envelopes and checked share records, by blob id. */
  private readonly sealedCache = new Map<string, OpenedEnvelope | ShareBody | null>();
  private opener: KeyObject | null = null;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(dir: string, key: AgentKey) {
    this.dir = dir;
    this.key = key;
    this.odb = new ObjectDb(dir);
  }

  /** Opens (and by default creates: a bare repository, branch `main`) the store in `dir`. */
  static async open(dir: string, key: AgentKey, options: OpenOptions = {}): Promise<MemoryStore> {
    const exists = await stat(`${dir}/HEAD`).then(
      () => true,
      () => false,
    );
    if (!exists) {
      if (options.create === false) {
        throw new MmogitError('ERR_NOT_FOUND', `no memory repository in ${dir}`, { details: { dir } });
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await git.init({ fs, dir, gitdir: dir, bare: true, defaultBranch: 'main' });
    }
    return new MemoryStore(dir, key);
  }

  /** Commit id of the public branch, or null before the first public entry. */
  async head(): Promise<string | null> {
    return readRef(this.dir, PUBLIC_REF);
  }

  /** Commit id of the private branch, or null. */
  async privateHead(): Promise<string | null> {
    return readRef(this.dir, PRIVATE_REF);
  }

  /** Remembers a structured memory. Throws ERR_INVALID_MEMORY for an unknown type, confidence outside 0..1, … */
  async remember(input: MemoryInput): Promise<Entry> {
    const [e] = await this.rememberMany([input]);
    return e as Entry;
  }

  /** Remembers many memories in one commit (validates all before writing any). */
  async rememberMany(inputs: readonly MemoryInput[]): Promise<Entry[]> {
    const extra: EncodedEntry[] = [];
    const encoded = inputs.map((input) => {
      const recipients = this.recipients(input?.shareWith, input?.visibility);
      const e = signEntry(
        this.key,
        'memory',
        memoryBody(input) as unknown as { [k: string]: CanonicalValue },
        { visibility: recipients ? 'private' : checkVisibility(input.visibility) },
      );
      if (recipients) extra.push(...this.sealFor(e, recipients));
      return e;
    });
    await this.enqueue([...encoded, ...extra]);
    return encoded.map((e) => e.entry);
  }

  /**
   * Shares an existing private entry of ours with more peers (onion addresses or hex public keys): writes one
   * `sealed` envelope per peer on the public branch (synced; only that peer can open it) and a private `share`
   * record. Returns the envelopes. Throws ERR_NOT_FOUND if `entryId` is not one of our private entries.
   */
  async share(entryId: string, peers: readonly string[]): Promise<Entry[]> {
    const recipients = this.recipients(peers, 'private') ?? [];
    const leaf = this.leaves(readRef(this.dir, PRIVATE_REF)).find((l) => l.id === entryId);
    const bytes = leaf ? this.odb.readTyped(leaf.blob, 'blob') : null;
    const d = bytes ? decodeEntry(bytes, entryId) : null;
    if (!bytes || !d?.verified || !d.entry || d.entry.author !== this.key.publicKeyHex) {
      throw new MmogitError('ERR_NOT_FOUND', `no private entry ${entryId} of ours to share`, {
        details: { id: entryId },
      });
    }
    if (d.entry.kind === SEALED_KIND || d.entry.kind === SHARE_KIND) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', `a ${d.entry.kind} entry cannot be shared`);
    }
    const out = this.sealFor({ id: d.id, entry: d.entry, bytes }, recipients);
    await this.enqueue(out);
    return out.filter((e) => e.entry.kind === SEALED_KIND).map((e) => e.entry);
  }

  /**
   * Checks `shareWith`: null when absent (then `visibility` decides), else the peers other than ourselves,
   * deduplicated by key (possibly none: the entry is still private). Refuses it with a public visibility.
   */
  private recipients(shareWith: readonly string[] | undefined, visibility: unknown): Recipient[] | null {
    if (shareWith === undefined) return null;
    if (!Array.isArray(shareWith) || shareWith.length > MAX_SHARE_RECIPIENTS) {
      throw new MmogitError(
        'ERR_INVALID_MEMORY',
        `shareWith must be an array of at most ${MAX_SHARE_RECIPIENTS} onion addresses or public keys`,
      );
    }
    if (visibility !== undefined && visibility !== 'private') {
      throw new MmogitError(
        'ERR_INVALID_MEMORY',
        'shareWith needs visibility private (public is for everyone)',
      );
    }
    const byOnion = new Map<string, Recipient>();
    for (const p of shareWith) {
      const r = recipientOf(p);
      if (r.onion !== this.key.onion) byOnion.set(r.onion, r);
    }
    return [...byOnion.values()];
  }

  /** The envelopes of `inner` for each recipient, and our private record of the share. */
  private sealFor(inner: EncodedEntry, recipients: Recipient[]): EncodedEntry[] {
    if (recipients.length === 0) return [];
    return [
      ...recipients.map((r) => sealEntry(this.key, inner, r)),
      shareRecord(
        this.key,
        inner.id,
        recipients.map((r) => r.onion),
      ),
    ];
  }

  /** Publishes a post (kind `post`, body `{ text, tags }`). */
  async post(text: string, options: { tags?: string[] } & AppendOptions = {}): Promise<Entry> {
    if (typeof text !== 'string' || text.length === 0) {
      throw new MmogitError('ERR_INVALID_MEMORY', 'post text must be a non-empty string');
    }
    const { tags, ...rest } = options;
    return this.append('post', { text, tags: [...new Set(tags ?? [])] }, rest);
  }

  /**
   * Appends a signed entry of any other kind (e.g. `message` for sent and received chat messages). The body must
   * be canonical-JSON encodable.
   */
  async append(
    kind: string,
    body: { [key: string]: CanonicalValue },
    options: AppendOptions = {},
  ): Promise<Entry> {
    if (kind === 'memory') {
      throw new MmogitError('ERR_INVALID_MEMORY', 'use remember() for kind memory', { details: { kind } });
    }
    if (kind === SEALED_KIND || kind === SHARE_KIND) {
      throw new MmogitError('ERR_INVALID_MEMORY', `kind ${kind} is written by share(), not append()`, {
        details: { kind },
      });
    }
    const recipients = this.recipients(options.shareWith, options.visibility);
    const encoded = signEntry(this.key, kind, body, {
      ...(options.createdAt === undefined ? {} : { createdAt: options.createdAt }),
      visibility: recipients ? 'private' : checkVisibility(options.visibility),
    });
    await this.enqueue([encoded, ...(recipients ? this.sealFor(encoded, recipients) : [])]);
    return encoded.entry;
  }

  /**
   * Stores entries signed elsewhere (e.g. a received message signed by its sender). Each must verify; throws
   * ERR_BAD_SIGNATURE otherwise. Returns their ids.
   */
  async importEntries(files: readonly Uint8Array[]): Promise<string[]> {
    const encoded = files.map((bytes) => {
      const d = decodeEntry(bytes);
      if (!d.verified || !d.entry) {
        throw new MmogitError('ERR_BAD_SIGNATURE', `entry rejected: ${d.problem}`, { details: { id: d.id } });
      }
      return { id: d.id, entry: d.entry, bytes };
    });
    await this.enqueue(encoded);
    return encoded.map((e) => e.id);
  }

  private enqueue(entries: EncodedEntry[]): Promise<void> {
    if (this.closed) return Promise.reject(new MmogitError('ERR_INVALID_ARGUMENT', 'memory store is closed'));
    const byRef = new Map<string, EncodedEntry[]>();
    for (const e of entries) {
      const ref = e.entry.visibility === 'private' ? PRIVATE_REF : PUBLIC_REF;
      byRef.set(ref, [...(byRef.get(ref) ?? []), e]);
    }
    const waits = [...byRef].map(
      ([ref, list]) =>
        new Promise<void>((resolve, reject) => this.pending.push({ ref, entries: list, resolve, reject })),
    );
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Writes issued in the same turn of the event loop become one commit.
      setImmediate(() => {
        this.flushScheduled = false;
        void this.exclusive(() => this.flush());
      });
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Runs `fn` after every earlier exclusive operation (writes, sync integration) has finished. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    // Private first: an envelope on the synced branch never exists without its entry kept here.
    for (const ref of [PRIVATE_REF, PUBLIC_REF]) {
      const mine = batch.filter((p) => p.ref === ref);
      if (mine.length === 0) continue;
      try {
        const entries = mine.flatMap((p) => p.entries);
        await this.commitEntries(
          ref,
          entries,
          `remember ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`,
        );
        for (const p of mine) p.resolve();
      } catch (e) {
        for (const p of mine) p.reject(e);
      }
    }
  }

  /** Writes blobs, the changed trees and a commit, then moves `ref` (retrying on a concurrent writer). */
  private async commitEntries(ref: string, entries: EncodedEntry[], message: string): Promise<string> {
    const blobs = entries.map((e) => makeObject('blob', e.bytes));
    const files = entries.map((e, i) => ({ path: entryPath(e.id), oid: (blobs[i] as StoredObject).oid }));
    for (let attempt = 0; ; attempt++) {
      const head = readRef(this.dir, ref);
      const parent = head ? this.readCommit(head) : null;
      const objects: StoredObject[] = [...blobs];
      const tree = this.buildTree(parent?.tree ?? null, files, objects);
      const commit = makeObject(
        'commit',
        encodeCommit({
          tree,
          parents: head ? [head] : [],
          ident: COMMIT_IDENT,
          // Commit times never go backwards along history (sync relies on it to bound ancestry walks).
          time: Math.max(Math.floor(Date.now() / 1000), parent?.time ?? 0),
          message: `${message}\n`,
        }),
      );
      objects.push(commit);
      this.odb.write(objects);
      if (updateRef(this.dir, ref, commit.oid, head)) return commit.oid;
      if (attempt >= MAX_REF_RETRIES) {
        throw new MmogitError('ERR_INTERNAL', `could not update ${ref}: another writer holds it`, {
          details: { ref },
        });
      }
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }

  /** Parsed commit (throws if absent or not a commit). */
  readCommit(oid: string): Commit {
    return parseCommit(this.odb.readTyped(oid, 'commit'));
  }

  /** Parsed tree, cached by id (objects are immutable). */
  readTree(oid: string): TreeEntry[] {
    let t = this.trees.get(oid);
    if (!t) {
      t = parseTree(this.odb.readTyped(oid, 'tree'));
      if (this.trees.size > 200_000) this.trees.clear();
      this.trees.set(oid, t);
    }
    return t;
  }

  /** Adds files to the tree `base` (null = empty), rewriting only trees on their paths; pushes new trees. */
  buildTree(base: string | null, files: { path: string[]; oid: string }[], out: StoredObject[]): string {
    const entries = new Map<string, TreeEntry>();
    if (base) for (const e of this.readTree(base)) entries.set(e.name, e);
    const groups = new Map<string, { path: string[]; oid: string }[]>();
    for (const f of files) {
      const [name, ...rest] = f.path as [string, ...string[]];
      if (rest.length === 0) entries.set(name, { mode: MODE_FILE, name, oid: f.oid });
      else {
        const g = groups.get(name) ?? [];
        if (g.length === 0) groups.set(name, g);
        g.push({ path: rest, oid: f.oid });
      }
    }
    for (const [name, sub] of groups) {
      const existing = entries.get(name);
      const oid = this.buildTree(existing?.mode === MODE_TREE ? existing.oid : null, sub, out);
      entries.set(name, { mode: MODE_TREE, name, oid });
    }
    return this.storeTree([...entries.values()], out);
  }

  private storeTree(entries: TreeEntry[], out: StoredObject[]): string {
    const obj = makeObject('tree', encodeTree(entries));
    out.push(obj);
    this.trees.set(obj.oid, parseTree(obj.content));
    return obj.oid;
  }

  /**
   * The union of two trees of our layout (a merge never conflicts: a file name is the hash of its content).
   * Throws ERR_SYNC if the same name holds different content, which verified trees cannot.
   */
  unionTrees(a: string, b: string, out: StoredObject[]): string {
    if (a === b) return a;
    const entries = new Map<string, TreeEntry>();
    for (const e of this.readTree(a)) entries.set(e.name, e);
    let changed = false;
    for (const e of this.readTree(b)) {
      const mine = entries.get(e.name);
      if (!mine) {
        entries.set(e.name, e);
        changed = true;
      } else if (mine.oid !== e.oid) {
        if (mine.mode !== MODE_TREE || e.mode !== MODE_TREE) {
          throw new MmogitError('ERR_SYNC', `conflicting files named ${e.name}`, {
            details: { name: e.name },
          });
        }
        entries.set(e.name, { ...mine, oid: this.unionTrees(mine.oid, e.oid, out) });
        changed = true;
      }
    }
    return changed ? this.storeTree([...entries.values()], out) : a;
  }

  /** Every entry file reachable from `ref`'s commit. */
  leaves(commit: string | null): Leaf[] {
    if (!commit) return [];
    const out: Leaf[] = [];
    const walk = (tree: string, depth: number) => {
      for (const e of this.readTree(tree)) {
        if (e.mode === MODE_TREE) walk(e.oid, depth + 1);
        else if (depth === 4 && e.name.endsWith('.json')) out.push({ id: e.name.slice(0, -5), blob: e.oid });
      }
    };
    walk(this.readCommit(commit).tree, 0);
    return out;
  }

  private decode(leaf: Leaf): { d: DecodedEntry; bytes: Uint8Array } {
    let p = this.parsed.get(leaf.blob);
    if (!p) {
      const bytes = this.odb.readTyped(leaf.blob, 'blob');
      p = { d: decodeEntry(bytes, leaf.id, { checkSignature: false }), bytes };
      if (this.parsed.size > 200_000) this.parsed.clear();
      this.parsed.set(leaf.blob, p);
    }
    return p;
  }

  private onionOf(hex: string): string {
    let o = this.onions.get(hex);
    if (!o) {
      o = onionFromPublicKey(Buffer.from(hex, 'hex'));
      this.onions.set(hex, o);
    }
    return o;
  }

  /**
   * Entries of both branches matching `filter`, newest first. Every returned entry's signature is checked on
   * this call; entries that fail any check are returned with `verified: false` and a `problem`.
   */
  async recall(filter: RecallFilter = {}): Promise<VerifiedEntry[]> {
    const now = Date.now();
    const since = filter.sinceHours === undefined ? null : now - filter.sinceHours * 3_600_000;
    const authorHex =
      filter.author === undefined
        ? null
        : /^[0-9a-f]{64}$/.test(filter.author)
          ? filter.author
          : filter.author.toLowerCase();
    const kind = filter.type ? 'memory' : filter.kind;
    const seen = new Set<string>();
    const found: DecodedEntry[] = [];
    const bytesOf = new Map<DecodedEntry, Uint8Array>();
    const fromEnvelope = new Map<DecodedEntry, string>();
    const shares = new Map<string, Set<string>>();
    const me = this.key.publicKeyHex;
    for (const ref of [PUBLIC_REF, PRIVATE_REF]) {
      for (const leaf of this.leaves(readRef(this.dir, ref))) {
        if (seen.has(leaf.id)) continue;
        seen.add(leaf.id);
        let { d, bytes } = this.decode(leaf);
        let e = d.entry;
        // Envelopes and share records are plumbing: recall shows what they carry unless asked for by kind.
        if (e && d.problem === UNCHECKED && kind !== e.kind) {
          if (e.kind === SHARE_KIND) {
            const share = this.checkedShare(leaf.blob, e);
            if (share) {
              const set = shares.get(share.entry) ?? new Set<string>();
              for (const o of share.with) set.add(o);
              shares.set(share.entry, set);
            }
            continue;
          }
          if (e.kind === SEALED_KIND) {
            if ((e.body as { to?: unknown }).to !== me) continue;
            const opened = this.openSealed(leaf.blob, e);
            if (opened.inner?.entry && !opened.problem) {
              if (seen.has(opened.inner.id)) continue;
              seen.add(opened.inner.id);
              d = opened.inner;
            } else {
              d = { id: d.id, entry: e, verified: false, problem: opened.problem ?? 'unreadable envelope' };
            }
            fromEnvelope.set(d, leaf.id);
            e = d.entry;
          }
        }
        bytesOf.set(d, bytes);
        if (!e) {
          if (filter.includeUnverified !== false && !kind && !filter.type && !filter.tag && !authorHex) {
            found.push(d);
          }
          continue;
        }
        if (kind && e.kind !== kind) continue;
        if (filter.visibility && e.visibility !== filter.visibility) continue;
        if (authorHex && e.author !== authorHex && this.onionOf(e.author) !== authorHex) continue;
        if (since !== null && Date.parse(e.createdAt) < since) continue;
        const body = e.body as { type?: unknown; tags?: unknown; expiresAt?: unknown };
        if (filter.type && body.type !== filter.type) continue;
        if (filter.tag && !(Array.isArray(body.tags) && body.tags.includes(filter.tag))) continue;
        if (
          !filter.includeExpired &&
          typeof body.expiresAt === 'string' &&
          Date.parse(body.expiresAt) <= now
        ) {
          continue;
        }
        found.push(d);
      }
    }
    found.sort((a, b) => {
      const ta = a.entry?.createdAt ?? '';
      const tb = b.entry?.createdAt ?? '';
      return ta < tb ? 1 : ta > tb ? -1 : a.id < b.id ? -1 : 1;
    });
    const out: VerifiedEntry[] = [];
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    let next = 0;
    while (out.length < limit && next < found.length) {
      // Verify only what is returned, in batches across cores.
      const batch = found.slice(next, next + Math.min(limit - out.length, found.length));
      next += batch.length;
      const checkable = batch.filter((d) => d.entry && d.problem === UNCHECKED);
      const results = await verifyMany(checkable.map((d) => signatureItem(d.entry as Entry, bytesOf.get(d))));
      const ok = new Map(checkable.map((d, i) => [d, results[i] === true]));
      for (const d of batch) {
        const verified = ok.has(d) ? ok.get(d) === true : d.verified;
        const problem = ok.has(d) ? (verified ? undefined : 'bad signature') : d.problem;
        if (!verified && filter.includeUnverified === false) continue;
        if (out.length >= limit) break;
        const e = d.entry;
        const envelope = fromEnvelope.get(d);
        const sharedWith =
          envelope !== undefined && verified
            ? [this.key.onion]
            : e?.visibility === 'private' && e.author === me
              ? [...(shares.get(d.id) ?? [])].sort()
              : [];
        out.push({
          id: d.id,
          entry: e,
          verified,
          ...(problem === undefined ? {} : { problem }),
          author: e ? this.onionOf(e.author) : '',
          kind: e?.kind ?? '',
          createdAt: e?.createdAt ?? '',
          visibility: e?.visibility ?? 'public',
          ...(sharedWith.length > 0 ? { sharedWith } : {}),
          ...(envelope === undefined ? {} : { envelope }),
        });
      }
    }
    return out;
  }

  /**
   * Opens an envelope sealed to us (cached by blob id): checks its own signature, decrypts, and checks the inner
   * entry (see {@link openEnvelope}).
   */
  private openSealed(blob: string, envelope: Entry): OpenedEnvelope {
    const cached = this.sealedCache.get(blob);
    if (cached && 'inner' in cached) return cached;
    let opened: OpenedEnvelope;
    if (!verifyEntrySignature(envelope)) opened = { inner: null, problem: 'bad signature' };
    else {
      this.opener ??= openerFor(this.key);
      opened = openEnvelope(this.key, this.opener, envelope);
    }
    if (this.sealedCache.size > 100_000) this.sealedCache.clear();
    this.sealedCache.set(blob, opened);
    return opened;
  }

  /** A share record of ours whose signature verifies (cached by blob id), else null. */
  private checkedShare(blob: string, record: Entry): ShareBody | null {
    const cached = this.sealedCache.get(blob);
    if (cached !== undefined && !(cached && 'inner' in cached)) return cached;
    const ok = record.author === this.key.publicKeyHex && verifyEntrySignature(record);
    const share = ok ? (record.body as unknown as ShareBody) : null;
    this.sealedCache.set(blob, share);
    return share;
  }

  /** Waits for pending writes; later writes are refused. */
  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.exclusive(() => undefined);
    this.closed = true;
  }
}
