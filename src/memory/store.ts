import { mkdir, stat } from 'node:fs/promises';
import { MmogitError } from '../errors.js';
import type { CanonicalValue } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import type { Commit, TreeEntry } from './_git.js';
import { initBareRepository } from './_init-repo.js';
import { type CasStep, casRef } from './cas.js';
import { commitEntries, readCommit } from './commits.js';
import { DecodeCache } from './decode-cache.js';
import {
  checkVisibility,
  decodeEntry,
  type EncodedEntry,
  type Entry,
  entryPath,
  signEntry,
} from './entry.js';
import {
  MAX_SHARE_RECIPIENTS,
  type MemoryInput,
  memoryBody,
  SEALED_KIND,
  SHARE_KIND,
  type Visibility,
} from './entry-kinds.js';
import { MainHistory } from './history.js';
import { ObjectDb, type StoredObject } from './odb.js';
import {
  checkEntries,
  type RecallFilter,
  type RecallSource,
  recallEntries,
  type StoreCheck,
  type VerifiedEntry,
} from './recall.js';
import { recallByIds } from './recall-ids.js';
import { PRIVATE_REF, PUBLIC_REF, readRef } from './refs.js';
import { type Recipient, recipientOf, sealEntry, shareRecord } from './sealed.js';
import { SealedReader } from './sealed-reader.js';
import type { SyncPort } from './sync-port.js';
import { type Leaf, type TreeFile, Trees } from './trees.js';
import { WriteBatch } from './write-batch.js';

/**
 * The memory store's public API. Each job lives in its own module: write batching (write-batch.ts), commits
 * by compare-and-swap (commits.ts, cas.ts), tree algebra (trees.ts), decode caches (decode-cache.ts), recall
 * (recall.ts), opening sealed envelopes (sealed-reader.ts); sync reaches the store only through
 * {@link SyncPort}.
 * @module
 */

export { COMMIT_IDENT } from './commits.js';
export type { RecallFilter, StoreCheck, VerifiedEntry } from './recall.js';

/** Options of {@link MemoryStore.append} and {@link MemoryStore.post}. */
export interface AppendOptions {
  visibility?: Visibility;
  createdAt?: string | Date;
  /** Peers allowed to read this private entry (see {@link MemoryInput.shareWith}); implies `private`. */
  shareWith?: readonly string[];
}

export interface OpenOptions {
  /** Create the repository if it is missing (default true). */
  create?: boolean;
  /** The store's clock in ms (default `Date.now`): entry and commit times, recall's "now". */
  now?: () => number;
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
  /** Object database (tests and tools read it; sync goes through {@link MemoryStore.syncPort}). */
  readonly odb: ObjectDb;
  private readonly now: () => number;
  private readonly trees: Trees;
  private readonly decoded: DecodeCache;
  private readonly sealed: SealedReader;
  private readonly writes: WriteBatch;
  private readonly history: MainHistory;

  private constructor(dir: string, key: AgentKey, now: () => number) {
    this.dir = dir;
    this.key = key;
    this.now = now;
    this.odb = new ObjectDb(dir);
    this.trees = new Trees(this.odb);
    this.decoded = new DecodeCache(this.odb);
    this.sealed = new SealedReader(key);
    const target = { dir, odb: this.odb, trees: this.trees, now };
    this.writes = new WriteBatch((ref, entries) => commitEntries(target, ref, entries));
    this.history = new MainHistory(
      () => readRef(this.dir, PUBLIC_REF),
      (c) => this.readCommit(c).parents,
    );
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
      await initBareRepository(dir, 'main');
    }
    return new MemoryStore(dir, key, options.now ?? Date.now);
  }

  private date(): Date {
    return new Date(this.now());
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
      const e = signEntry(this.key, 'memory', memoryBody(input), {
        visibility: recipients ? 'private' : checkVisibility(input.visibility),
        createdAt: this.date(),
      });
      if (recipients) extra.push(...this.sealFor(e, recipients));
      return e;
    });
    await this.writes.enqueue([...encoded, ...extra]);
    return encoded.map((e) => e.entry);
  }

  /**
   * Shares an existing private entry of ours with more peers (onion addresses or hex public keys): writes one
   * `sealed` envelope per peer on the public branch (synced; only that peer can open it) and a private `share`
   * record. Returns the envelopes. Throws ERR_NOT_FOUND if `entryId` is not one of our private entries.
   */
  async share(entryId: string, peers: readonly string[]): Promise<Entry[]> {
    const recipients = this.recipients(peers, 'private') ?? [];
    const leaf = this.leavesOf(PRIVATE_REF).find((l) => l.id === entryId);
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
    await this.writes.enqueue(out);
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
        this.date(),
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
    return (await this.appendWithId(kind, body, options)).entry;
  }

  /** {@link append}, also returning the entry's id (its content address, for {@link recallByIds}). */
  async appendWithId(
    kind: string,
    body: { [key: string]: CanonicalValue },
    options: AppendOptions = {},
  ): Promise<{ id: string; entry: Entry }> {
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
      createdAt: options.createdAt ?? this.date(),
      visibility: recipients ? 'private' : checkVisibility(options.visibility),
    });
    await this.writes.enqueue([encoded, ...(recipients ? this.sealFor(encoded, recipients) : [])]);
    return { id: encoded.id, entry: encoded.entry };
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
    await this.writes.enqueue(encoded);
    return encoded.map((e) => e.id);
  }

  /** Runs `fn` after every earlier exclusive operation (writes, sync integration) has finished. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.writes.exclusive(fn);
  }

  /** Parsed commit (throws if absent or not a commit). */
  readCommit(oid: string): Commit {
    return readCommit(this.odb, oid);
  }

  /** Parsed tree, cached by id (objects are immutable). */
  readTree(oid: string): TreeEntry[] {
    return this.trees.read(oid);
  }

  /** Adds files to the tree `base` (null = empty), rewriting only trees on their paths; pushes new trees. */
  buildTree(base: string | null, files: TreeFile[], out: StoredObject[]): string {
    return this.trees.build(base, files, out);
  }

  /** Every entry file reachable from `commit` (none for null). */
  leaves(commit: string | null): Leaf[] {
    return commit ? this.trees.leaves(this.readCommit(commit).tree) : [];
  }

  private leavesOf(ref: string): Leaf[] {
    return this.leaves(readRef(this.dir, ref));
  }

  private recallSource(): RecallSource {
    return {
      key: this.key,
      now: this.now,
      leaves: (ref) => this.leavesOf(ref),
      decode: this.decoded,
      sealed: this.sealed,
    };
  }

  /**
   * Entries of both branches matching `filter`, newest first. Every returned entry's signature is checked on
   * this call; entries that fail any check are returned with `verified: false` and a `problem`.
   */
  recall(filter: RecallFilter = {}): Promise<VerifiedEntry[]> {
    return recallEntries(this.recallSource(), filter);
  }

  /**
   * The entries `ids` of either branch, in the order asked, each signature checked on this call; ids that name
   * no entry are left out. Reads only those entries (a recall reads every entry file), so a caller that kept the
   * ids it wrote reads a few of many in O(few). Envelopes are not opened and `sharedWith` is not set.
   */
  recallByIds(ids: readonly string[]): Promise<VerifiedEntry[]> {
    return recallByIds(
      {
        ...this.recallSource(),
        root: (ref) => {
          const head = readRef(this.dir, ref);
          return head ? this.readCommit(head).tree : null;
        },
        blobIn: (root, id) => this.trees.lookup(root, entryPath(id)),
      },
      ids,
    );
  }

  /**
   * Checks every entry file of both branches, signatures included, and reports those that fail: how a user
   * learns that the store was tampered with, whatever filter a recall would have used.
   */
  check(): Promise<StoreCheck> {
    return checkEntries(this.recallSource());
  }

  /**
   * The narrow view the sync protocol works through (see {@link SyncPort}).
   * @internal
   */
  syncPort(): SyncPort {
    return {
      key: this.key,
      head: () => readRef(this.dir, PUBLIC_REF),
      readCommit: (oid) => this.readCommit(oid),
      readTree: (oid) => this.trees.read(oid),
      readObject: (oid) => this.odb.tryRead(oid),
      mainHistory: () => this.history.current(),
      receivePack: (count) => {
        const w = this.odb.packWriter(count);
        return {
          add: (o) => w.add(o),
          get added() {
            return w.added;
          },
          drain: () => w.drain(),
          finish: async () => {
            await w.finish();
            this.odb.scanPacks();
          },
          abort: () => w.abort(),
        };
      },
      writeObjects: (objects) => this.odb.write(objects),
      unionTrees: (a, b, out) => this.trees.union(a, b, out),
      updateMain: <T>(step: (head: string | null) => CasStep<T> | Promise<CasStep<T>>) =>
        this.writes.exclusive(() => casRef(this.dir, PUBLIC_REF, step, 'ERR_SYNC')),
    };
  }

  /** Waits for pending writes; later writes are refused. */
  close(): Promise<void> {
    return this.writes.close();
  }
}
