import { MmogitError } from '../../errors.js';
import {
  type Commit,
  encodeCommit,
  encodeTree,
  MODE_FILE,
  MODE_TREE,
  type ObjectType,
  parseCommit,
  parseTree,
  type TreeEntry,
} from '../_git.js';
import { pacer } from '../_pace.js';
import { type VerifyItem, verifyMany } from '../_verify-pool.js';
import { COMMIT_IDENT, COMMIT_MESSAGE_RE } from '../commits.js';
import { decodeEntry, signatureItem, UNCHECKED } from '../entry.js';
import { makeObject, type StoredObject } from '../odb.js';
import type { SyncPort } from '../sync-port.js';
import { untrusted } from './frames.js';
import { MAX_COMMIT_CLOCK_SKEW_S, MAX_PARENTS, VERIFY_BATCH } from './limits.js';

/**
 * Verification of what a peer sends, in two steps. As each object arrives ({@link IncomingCheck.add}): its id
 * is computed here (never taken from the peer); a commit must be in the exact form mmogit writes, with the
 * fixed identity, one of the fixed messages, at most two parents and a time not ahead of our clock; a tree must
 * be canonical; an entry must pass every entry check, be public, be by an accepted author, and its signature is
 * queued for batch verification. After the pack ({@link IncomingCheck.checkHistory}): walking the offered
 * history from its head, every commit is in the pack or already in main's history, never older than its
 * parents, and every tree follows the entry layout at its path. A subtree is taken as checked only when it is
 * identical to a verified parent's at the same path; anything else the history references is checked here
 * whether or not the local store already holds it (an object of the private branch is refused like a private
 * entry in the pack). Nothing in the pack may be left unreferenced.
 * @module
 */

const ENTRY_NAME_RE = /^([0-9a-f]{64})\.json$/;
const DIGIT_RE = /^[0-9a-f]$/;

export interface CheckOptions {
  acceptAuthor?: ((authorHex: string) => boolean) | undefined;
  /** Our clock, ms. */
  now: number;
  /** Called once per new entry as it arrives (the per-peer entry budget). */
  onEntry: () => void;
}

export class IncomingCheck {
  private readonly commits = new Map<string, Commit>();
  private readonly trees = new Map<string, TreeEntry[]>();
  /** Blob id → entry id (SHA-256 of the bytes), for blobs in the pack and local blobs checked here. */
  private readonly blobs = new Map<string, string>();
  private readonly inPack = new Set<string>();
  private readonly used = new Set<string>();
  private readonly seenTree = new Set<string>();
  private batch: { item: VerifyItem; id: string }[] = [];
  private readonly inflight: Promise<void>[] = [];
  /** New entries (blobs in the pack). */
  entries = 0;

  constructor(private readonly options: CheckOptions) {}

  /** Checks one object as it arrives; returns it with its id, ready for the pack. */
  add(type: ObjectType, content: Uint8Array): StoredObject {
    const o = makeObject(type, content);
    if (this.inPack.has(o.oid)) throw untrusted(`object ${o.oid} sent twice`);
    this.inPack.add(o.oid);
    if (type === 'commit') this.commits.set(o.oid, this.commitOf(content));
    else if (type === 'tree') this.trees.set(o.oid, treeOf(content));
    else {
      this.blobs.set(o.oid, this.entryOf(content));
      this.entries++;
      this.options.onEntry();
    }
    return o;
  }

  private commitOf(content: Uint8Array): Commit {
    const c = parseCommit(content);
    if (Buffer.compare(Buffer.from(encodeCommit(c)), Buffer.from(content)) !== 0) {
      throw untrusted('commit is not in the form mmogit writes');
    }
    if (c.ident !== COMMIT_IDENT) throw untrusted('commit has a foreign identity line');
    if (!COMMIT_MESSAGE_RE.test(c.message)) throw untrusted('commit has a message mmogit never writes');
    if (c.parents.length > MAX_PARENTS || new Set(c.parents).size !== c.parents.length) {
      throw untrusted('commit has too many or repeated parents');
    }
    if (c.time > Math.floor(this.options.now / 1000) + MAX_COMMIT_CLOCK_SKEW_S) {
      throw untrusted('commit time is in the future', { time: c.time });
    }
    return c;
  }

  /** A new entry's checks but the signature, which is queued; returns its id. */
  private entryOf(content: Uint8Array): string {
    const d = decodeEntry(content, undefined, { checkSignature: false });
    if (!d.entry || d.problem !== UNCHECKED) {
      throw untrusted(`entry ${d.id} is invalid: ${d.problem}`, { id: d.id });
    }
    if (d.entry.visibility !== 'public') throw untrusted(`entry ${d.id} is not public`, { id: d.id });
    if (this.options.acceptAuthor && !this.options.acceptAuthor(d.entry.author)) {
      throw untrusted(`entry ${d.id} is by an author this peer may not relay`, { author: d.entry.author });
    }
    this.batch.push({ item: signatureItem(d.entry, content), id: d.id });
    if (this.batch.length >= VERIFY_BATCH) this.flushBatch();
    return d.id;
  }

  private flushBatch(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const run = verifyMany(batch.map((b) => b.item)).then((ok) => {
      const bad = ok.findIndex((v) => !v);
      if (bad >= 0) {
        const id = batch[bad]?.id;
        throw new MmogitError('ERR_BAD_SIGNATURE', `entry ${id} has a forged signature`, { details: { id } });
      }
    });
    run.catch(() => {});
    this.inflight.push(run);
  }

  /** Waits while more than two signature batches are in flight (bounds what they hold). */
  async backpressure(): Promise<void> {
    while (this.inflight.length > 2) await this.inflight.shift();
  }

  /** Every queued signature, checked. */
  async signatures(): Promise<void> {
    this.flushBatch();
    while (this.inflight.length > 0) await this.inflight.shift();
  }

  /** The history check, once the whole pack is in (see the module comment). */
  async checkHistory(port: SyncPort, head: string, main: ReadonlySet<string>): Promise<void> {
    const tick = pacer();
    const order = await this.topoOrder(head, main);
    const treeOfCommit = (oid: string) => (this.commits.get(oid) ?? port.readCommit(oid)).tree;
    const timeOf = (oid: string) => (this.commits.get(oid) ?? port.readCommit(oid)).time;
    for (const oid of order) {
      const c = this.commits.get(oid) as Commit;
      this.used.add(oid);
      for (const p of c.parents) {
        if (c.time < timeOf(p)) throw untrusted(`commit ${oid} is older than its parent`);
      }
      await this.checkTree(port, c.tree, 0, '', c.parents.map(treeOfCommit), tick);
    }
    for (const oid of this.inPack) if (!this.used.has(oid)) throw untrusted(`unreferenced object ${oid}`);
  }

  /** The pack's commits reachable from `head`, parents first; any other commit must be in main's history. */
  private async topoOrder(head: string, main: ReadonlySet<string>): Promise<string[]> {
    const tick = pacer();
    const order: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: [string, boolean][] = [[head, false]];
    while (stack.length > 0) {
      const [oid, expanded] = stack.pop() as [string, boolean];
      if (expanded) {
        state.set(oid, 'done');
        order.push(oid);
        continue;
      }
      if (state.has(oid) || main.has(oid)) continue;
      const c = this.commits.get(oid);
      if (!c) throw untrusted(`pack is incomplete: commit ${oid} is neither sent nor in our history`);
      state.set(oid, 'open');
      stack.push([oid, true]);
      for (const p of c.parents) if (!state.has(p) && !main.has(p)) stack.push([p, false]);
      await tick();
    }
    return order;
  }

  /** A tree's entries: from the pack, or re-read and re-checked from the local store. */
  private treeEntries(port: SyncPort, oid: string): TreeEntry[] {
    const mine = this.trees.get(oid);
    if (mine) {
      this.used.add(oid);
      return mine;
    }
    const o = port.readObject(oid);
    if (o?.type !== 'tree' || makeObject('tree', o.content).oid !== oid) {
      throw untrusted(`pack is incomplete: tree ${oid} missing`);
    }
    const entries = treeOf(o.content);
    this.trees.set(oid, entries);
    return entries;
  }

  /** The entries of a verified tree (a parent's: in the pack, or ours). */
  private verifiedTree(port: SyncPort, oid: string): TreeEntry[] {
    return this.trees.get(oid) ?? port.readTree(oid);
  }

  private async checkTree(
    port: SyncPort,
    oid: string,
    depth: number,
    prefix: string,
    bases: string[],
    tick: () => Promise<void> | undefined,
  ): Promise<void> {
    if (bases.includes(oid)) return;
    const key = `${depth}:${prefix}:${oid}`;
    if (this.seenTree.has(key)) return;
    this.seenTree.add(key);
    const entries = this.treeEntries(port, oid);
    const baseMaps = bases.map((b) => new Map(this.verifiedTree(port, b).map((e) => [e.name, e])));
    for (const e of entries) {
      const where = `${prefix}${e.name}`;
      if (depth === 0) {
        if (e.name !== 'entries' || e.mode !== MODE_TREE) throw untrusted(`unexpected path ${e.name}`);
      } else if (depth < 4) {
        if (!DIGIT_RE.test(e.name) || e.mode !== MODE_TREE) throw untrusted(`unexpected path ${where}`);
      } else if (!ENTRY_NAME_RE.test(e.name) || e.mode !== MODE_FILE || !e.name.startsWith(prefix)) {
        throw untrusted(`unexpected path ${prefix}/${e.name}`);
      }
      const same = baseMaps.map((m) => m.get(e.name)).filter((x): x is TreeEntry => x?.mode === e.mode);
      if (same.some((x) => x.oid === e.oid)) continue;
      if (e.mode === MODE_TREE) {
        await this.checkTree(
          port,
          e.oid,
          depth + 1,
          depth === 0 ? '' : where,
          same.map((x) => x.oid),
          tick,
        );
      } else {
        this.checkBlob(port, e.oid, (ENTRY_NAME_RE.exec(e.name) as RegExpExecArray)[1] as string);
      }
      await tick();
    }
  }

  private checkBlob(port: SyncPort, oid: string, id: string): void {
    let actual = this.blobs.get(oid);
    if (actual === undefined) {
      // Not sent: whatever the local store holds under this id is checked as if the peer had sent it.
      const o = port.readObject(oid);
      if (o?.type !== 'blob' || makeObject('blob', o.content).oid !== oid) {
        throw untrusted(`pack is incomplete: entry ${id} missing`, { id });
      }
      actual = this.entryOf(o.content);
      this.blobs.set(oid, actual);
    } else {
      this.used.add(oid);
    }
    if (actual !== id) throw untrusted(`entry file ${id}.json is not the SHA-256 of its bytes`, { id });
  }
}

/** A tree in canonical git form with distinct names, else ERR_UNTRUSTED_DATA. */
function treeOf(content: Uint8Array): TreeEntry[] {
  const entries = parseTree(content);
  if (Buffer.compare(Buffer.from(encodeTree(entries)), Buffer.from(content)) !== 0) {
    throw untrusted('tree is not in canonical git form');
  }
  if (new Set(entries.map((e) => e.name)).size !== entries.length) throw untrusted('duplicate tree entry');
  return entries;
}
