import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import { canonicalBytes } from '../identity/canonical.js';
import { onionFromPublicKey } from '../identity/onion.js';
import { SIGNING_CONTEXTS, verifySignature } from '../identity/signing.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import {
  encodeCommit,
  encodeTree,
  MODE_FILE,
  MODE_TREE,
  type ObjectType,
  parseCommit,
  parseTree,
} from './_git.js';
import { verifyMany } from './_verify-pool.js';
import { type DecodedEntry, decodeEntry, MAX_ENTRY_BYTES, signatureItem, UNCHECKED } from './entry.js';
import { makeObject, type StoredObject } from './odb.js';
import { PUBLIC_REF, readRef, updateRef } from './refs.js';
import { COMMIT_IDENT, type MemoryStore } from './store.js';

/**
 * Memory sync between two agents over any {@link ByteChannel} (in an agent: a libp2p stream inside the
 * post-quantum session). No git server: both sides run this function, one as `initiator`, one as `responder`,
 * and both directions happen in one call. Wire format and rules: docs/protocol.md §3 (Sync).
 *
 * @example
 * const r = await syncOverChannel(store, channel, { role: 'initiator', peer: session.peer });
 * r.head; // both sides now point `main` at this commit
 * @module
 */

export const SYNC_PROTOCOL_VERSION = 'mmogit-sync/1';
export const DEFAULT_SYNC_TIMEOUT_MS = 120_000;
/** Largest compressed pack a peer may send in one sync. */
export const MAX_SYNC_PACK_BYTES = 256 * 1024 * 1024;
/** Largest decompressed pack (guards against compression bombs). */
export const MAX_SYNC_RAW_BYTES = 1024 * 1024 * 1024;
/** Largest single object (a tree or a commit; entries are limited to MAX_ENTRY_BYTES). */
export const MAX_OBJECT_BYTES = 4 * 1024 * 1024;
/** Largest control frame. */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;
const PACK_CHUNK = 1024 * 1024;
const FIRST_HAVE_BATCH = 16;
const MAX_HAVE_BATCH = 1024;

const T = { hello: 1, ref: 2, want: 3, have: 4, bits: 5, pack: 6, packEnd: 7, result: 8, error: 9 } as const;
const TYPE_NAMES = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k])) as Record<number, string>;
const OBJ_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };
const CODE_OBJ: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob' };

/** The other agent, as authenticated by the channel (the PQ session's peer). */
export interface SyncPeer {
  publicKey: Uint8Array;
  onion: string;
}

/** Progress events, in order. */
export type SyncProgress =
  | { stage: 'hello' }
  | { stage: 'negotiate'; direction: 'send' | 'receive'; commits: number }
  | { stage: 'send'; objects: number; bytes: number }
  | { stage: 'receive'; bytes: number }
  | { stage: 'verify'; objects: number; entries: number }
  | { stage: 'integrate'; head: string | null; mode: 'none' | 'fast-forward' | 'merge' }
  | { stage: 'done' };

export interface SyncOptions {
  role: 'initiator' | 'responder';
  peer: SyncPeer;
  onProgress?: (event: SyncProgress) => void;
  /**
   * Which authors' entries to accept from this peer (hex public key). Default: any author, as long as the
   * entry's own signature verifies and the history is vouched for by the peer's signed ref.
   */
  acceptAuthor?: (authorHex: string) => boolean;
  maxPackBytes?: number;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface SyncResult {
  /** Entries we sent. */
  sent: number;
  /** Entries we received (new to us). */
  received: number;
  /** Our `main` after the sync (the peer's is the same unless someone wrote meanwhile). */
  head: string | null;
  bytesSent: number;
  bytesReceived: number;
  ms: number;
}

interface Frame {
  type: number;
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class Wire {
  bytesSent = 0;
  bytesReceived = 0;
  constructor(
    private readonly ch: ByteChannel,
    private readonly signal: AbortSignal,
  ) {}

  async send(type: number, payload: Uint8Array | object): Promise<void> {
    const body = payload instanceof Uint8Array ? payload : encoder.encode(JSON.stringify(payload));
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length + 1);
    frame[4] = type;
    frame.set(body, 5);
    this.bytesSent += frame.length;
    await this.ch.write(frame, { signal: this.signal });
  }

  async recv(): Promise<Frame> {
    const head = await this.ch.readExactly(5, { signal: this.signal });
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (len < 1 || len > MAX_FRAME_BYTES + 1) {
      throw new MmogitError('ERR_TOO_LARGE', `sync frame of ${len} bytes`, { details: { len } });
    }
    const payload = len > 1 ? await this.ch.readExactly(len - 1, { signal: this.signal }) : new Uint8Array(0);
    this.bytesReceived += 4 + len;
    const type = head[4] as number;
    if (type === T.error) {
      const e = parseJson(payload) as { code?: string; message?: string };
      throw new MmogitError('ERR_SYNC', `peer refused the sync: ${e.message ?? 'unknown error'}`, {
        details: { peerCode: e.code },
      });
    }
    return { type, payload };
  }

  async expect(type: number): Promise<Uint8Array> {
    const f = await this.recv();
    if (f.type !== type) throw protocol(`expected ${TYPE_NAMES[type]}, got ${TYPE_NAMES[f.type] ?? f.type}`);
    return f.payload;
  }

  async expectJson<V>(type: number): Promise<V> {
    return parseJson(await this.expect(type)) as V;
  }
}

function protocol(message: string): MmogitError {
  return new MmogitError('ERR_SYNC', `sync protocol violation: ${message}`);
}

function untrusted(message: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError(
    'ERR_UNTRUSTED_DATA',
    `refused data from peer: ${message}`,
    details ? { details } : {},
  );
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new MmogitError('ERR_SYNC', 'malformed sync message', { cause: e });
  }
}

const OID_RE = /^[0-9a-f]{40}$/;
const NONCE_RE = /^[0-9a-f]{64}$/;

/** The statement a sender signs for the ref it offers: bound to both identities and the receiver's nonce. */
function refStatement(from: string, to: string, nonce: string, head: string | null): Uint8Array {
  return canonicalBytes({ proto: SYNC_PROTOCOL_VERSION, from, to, nonce, head });
}

/**
 * Runs one sync with `peer` over `channel`: the initiator sends first, then the responder; each receiver
 * verifies everything before moving its ref, then fast-forwards or writes the deterministic union merge, so both
 * sides end on the same commit.
 */
export async function syncOverChannel(
  store: MemoryStore,
  channel: ByteChannel,
  options: SyncOptions,
): Promise<SyncResult> {
  const started = performance.now();
  const { peer } = options;
  if (!(peer.publicKey instanceof Uint8Array) || onionFromPublicKey(peer.publicKey) !== peer.onion) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'sync peer onion does not match its public key');
  }
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS, 'memory sync');
  const wire = new Wire(channel, signal);
  const progress = options.onProgress ?? (() => {});
  const me = store.key.onion;
  const nonce = randomBytes(32).toString('hex');
  let sent = 0;
  let received = 0;
  try {
    await wire.send(T.hello, { proto: SYNC_PROTOCOL_VERSION, onion: me, nonce });
    const hello = await wire.expectJson<{ proto?: unknown; onion?: unknown; nonce?: unknown }>(T.hello);
    if (hello.proto !== SYNC_PROTOCOL_VERSION) throw protocol(`unsupported protocol ${String(hello.proto)}`);
    if (hello.onion !== peer.onion) throw new MmogitError('ERR_SYNC', 'peer announced another identity');
    if (typeof hello.nonce !== 'string' || !NONCE_RE.test(hello.nonce)) throw protocol('bad nonce');
    const peerNonce = hello.nonce;
    progress({ stage: 'hello' });
    const ctx: PhaseContext = { store, wire, peer, me, nonce, peerNonce, progress, signal, options };
    if (options.role === 'initiator') {
      sent = await sendPhase(ctx);
      received = await receivePhase(ctx);
    } else {
      received = await receivePhase(ctx);
      sent = await sendPhase(ctx);
    }
    progress({ stage: 'done' });
    return {
      sent,
      received,
      head: readRef(store.dir, PUBLIC_REF),
      bytesSent: wire.bytesSent,
      bytesReceived: wire.bytesReceived,
      ms: performance.now() - started,
    };
  } catch (e) {
    // Tell the peer why (best effort) so it fails with a reason rather than a closed connection.
    if (e instanceof MmogitError && e.code !== 'ERR_SYNC' && e.code !== 'ERR_CONNECTION_CLOSED') {
      await wire.send(T.error, { code: e.code, message: e.message }).catch(() => {});
    }
    throw e;
  }
}

interface PhaseContext {
  store: MemoryStore;
  wire: Wire;
  peer: SyncPeer;
  me: string;
  nonce: string;
  peerNonce: string;
  progress: (e: SyncProgress) => void;
  signal: AbortSignal;
  options: SyncOptions;
}

// ---------------------------------------------------------------------------------------------------------------
// Sender

async function sendPhase(ctx: PhaseContext): Promise<number> {
  const { store, wire } = ctx;
  const head = readRef(store.dir, PUBLIC_REF);
  const statement = refStatement(ctx.me, ctx.peer.onion, ctx.peerNonce, head);
  const sig = Buffer.from(store.key.sign(SIGNING_CONTEXTS.syncRef, statement)).toString('hex');
  await wire.send(T.ref, { head, sig });
  const want = await wire.expectJson<{ need?: unknown }>(T.want);
  let entries = 0;
  if (want.need === true && head) {
    const missing = await negotiate(ctx, head);
    const { objects, blobs } = collectObjects(store, missing);
    entries = blobs;
    await sendPack(ctx, objects);
  }
  await wire.expectJson<{ head?: unknown }>(T.result);
  return entries;
}

/** Finds the commits reachable from `head` that the peer lacks, asking in growing batches (16, 64, 256, 1024). */
async function negotiate(ctx: PhaseContext, head: string): Promise<string[]> {
  const { store, wire } = ctx;
  const peerHas = new Set<string>();
  const missing: string[] = [];
  // queue entries remember which children reached them: a commit is skipped once all those children are
  // known to the peer (the peer has every ancestor of a commit it has).
  const queue: { oid: string; time: number; children: string[] }[] = [
    { oid: head, time: store.readCommit(head).time, children: [] },
  ];
  const queued = new Map<string, { oid: string; time: number; children: string[] }>([
    [head, queue[0] as { oid: string; time: number; children: string[] }],
  ]);
  let batch = FIRST_HAVE_BATCH;
  while (queue.length > 0) {
    throwIfAborted(ctx.signal, 'memory sync');
    const ask: string[] = [];
    while (ask.length < batch && queue.length > 0) {
      // newest first, so the boundary is found early
      queue.sort((a, b) => a.time - b.time);
      const next = queue.pop() as { oid: string; time: number; children: string[] };
      if (next.children.length > 0 && next.children.every((c) => peerHas.has(c))) {
        peerHas.add(next.oid);
        continue;
      }
      ask.push(next.oid);
      for (const p of store.readCommit(next.oid).parents) {
        const q = queued.get(p);
        if (q) q.children.push(next.oid);
        else {
          const item = { oid: p, time: store.readCommit(p).time, children: [next.oid] };
          queued.set(p, item);
          queue.push(item);
        }
      }
    }
    if (ask.length === 0) break;
    await wire.send(T.have, { ids: ask });
    const bits = await wire.expect(T.bits);
    if (bits.length !== Math.ceil(ask.length / 8)) throw protocol('bitmap length');
    ask.forEach((oid, i) => {
      if (((bits[i >> 3] as number) >> (i & 7)) & 1) peerHas.add(oid);
      else missing.push(oid);
    });
    batch = Math.min(batch * 4, MAX_HAVE_BATCH);
  }
  ctx.progress({ stage: 'negotiate', direction: 'send', commits: missing.length });
  // oldest first: a commit's objects are sent after its parent's, which keeps related trees close in the stream
  return missing.reverse();
}

/**
 * Objects of `commits` that the peer lacks: each commit, and in its tree only what differs from all of its
 * parents' trees at the same path (the peer has or receives those). Refuses to send a private entry.
 */
function collectObjects(store: MemoryStore, commits: string[]): { objects: StoredObject[]; blobs: number } {
  const objects: StoredObject[] = [];
  const sent = new Set<string>();
  let blobs = 0;
  const addTree = (oid: string, bases: string[]) => {
    if (sent.has(oid) || bases.includes(oid)) return;
    sent.add(oid);
    objects.push({ type: 'tree', oid, content: store.odb.readTyped(oid, 'tree') });
    const baseEntries = bases.map((b) => new Map(store.readTree(b).map((e) => [e.name, e])));
    for (const e of store.readTree(oid)) {
      const same = baseEntries.map((m) => m.get(e.name)).filter((x) => x !== undefined);
      if (same.some((x) => x.oid === e.oid)) continue;
      if (e.mode === MODE_TREE) {
        addTree(
          e.oid,
          same.filter((x) => x.mode === MODE_TREE).map((x) => x.oid),
        );
      } else if (!sent.has(e.oid)) {
        sent.add(e.oid);
        const content = store.odb.readTyped(e.oid, 'blob');
        // Belt and braces: private entries live on another branch, but never let one out.
        if (!isPublicEntry(content)) {
          throw new MmogitError('ERR_INTERNAL', `refusing to send non-public entry ${e.name}`);
        }
        objects.push({ type: 'blob', oid: e.oid, content });
        blobs++;
      }
    }
  };
  for (const oid of commits) {
    const c = store.readCommit(oid);
    objects.push({ type: 'commit', oid, content: store.odb.readTyped(oid, 'commit') });
    sent.add(oid);
    addTree(
      c.tree,
      c.parents.map((p) => store.readCommit(p).tree),
    );
  }
  return { objects, blobs };
}

function isPublicEntry(content: Uint8Array): boolean {
  try {
    return (JSON.parse(decoder.decode(content)) as { visibility?: unknown }).visibility === 'public';
  } catch {
    return false;
  }
}

/**
 * Pack stream: each object as `type(1) ‖ size(u32 BE) ‖ content`, the whole stream raw-deflated once and cut
 * into frames. One stream instead of git's per-object zlib lets the compressor share the repeated parts (the
 * author key in every entry, successive versions of a tree) the way git's deltas would.
 */
async function sendPack(ctx: PhaseContext, objects: StoredObject[]): Promise<void> {
  let size = 0;
  for (const o of objects) size += 5 + o.content.length;
  const raw = Buffer.allocUnsafe(size);
  let at = 0;
  for (const o of objects) {
    raw[at] = OBJ_CODE[o.type];
    raw.writeUInt32BE(o.content.length, at + 1);
    raw.set(o.content, at + 5);
    at += 5 + o.content.length;
  }
  const z = deflateRawSync(raw, { level: 6 });
  for (let i = 0; i < z.length; i += PACK_CHUNK) {
    await ctx.wire.send(T.pack, z.subarray(i, Math.min(i + PACK_CHUNK, z.length)));
  }
  await ctx.wire.send(T.packEnd, { objects: objects.length, rawBytes: raw.length });
  ctx.progress({ stage: 'send', objects: objects.length, bytes: z.length });
}

// ---------------------------------------------------------------------------------------------------------------
// Receiver

async function receivePhase(ctx: PhaseContext): Promise<number> {
  const { store, wire, peer } = ctx;
  const ref = await wire.expectJson<{ head?: unknown; sig?: unknown }>(T.ref);
  const head = ref.head;
  if (head !== null && (typeof head !== 'string' || !OID_RE.test(head))) throw protocol('bad head');
  if (typeof ref.sig !== 'string' || !/^[0-9a-f]{128}$/.test(ref.sig)) throw protocol('bad ref signature');
  const statement = refStatement(peer.onion, ctx.me, ctx.nonce, head);
  if (!verifySignature(SIGNING_CONTEXTS.syncRef, statement, Buffer.from(ref.sig, 'hex'), peer.publicKey)) {
    throw new MmogitError('ERR_BAD_SIGNATURE', 'peer ref signature does not verify');
  }
  const need = head !== null && !store.odb.has(head);
  await wire.send(T.want, { need });
  let entries = 0;
  if (need) {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const max = ctx.options.maxPackBytes ?? MAX_SYNC_PACK_BYTES;
    let commitsAsked = 0;
    for (;;) {
      const f = await wire.recv();
      if (f.type === T.have) {
        const { ids } = parseJson(f.payload) as { ids?: unknown };
        if (!Array.isArray(ids) || ids.length > MAX_HAVE_BATCH) throw protocol('bad have list');
        const bits = new Uint8Array(Math.ceil(ids.length / 8));
        ids.forEach((id, i) => {
          if (typeof id !== 'string' || !OID_RE.test(id)) throw protocol('bad id');
          if (store.odb.has(id)) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
        });
        commitsAsked += ids.length;
        await wire.send(T.bits, bits);
      } else if (f.type === T.pack) {
        total += f.payload.length;
        if (total > max) {
          throw new MmogitError('ERR_TOO_LARGE', `peer sent more than ${max} bytes of pack`, {
            details: { limit: max },
          });
        }
        chunks.push(f.payload);
        ctx.progress({ stage: 'receive', bytes: total });
      } else if (f.type === T.packEnd) {
        break;
      } else {
        throw protocol(`unexpected ${TYPE_NAMES[f.type] ?? f.type}`);
      }
    }
    ctx.progress({ stage: 'negotiate', direction: 'receive', commits: commitsAsked });
    const objects = unpack(Buffer.concat(chunks));
    entries = await verifyIncoming(ctx, head, objects);
    // Everything checked: store the objects as one pack. No ref has moved yet, so a crash here leaves only
    // unreferenced (and complete) objects, which the next sync reuses.
    store.odb.write([...objects.values()], { forcePack: true });
  }
  const result = await integrate(ctx, head);
  await wire.send(T.result, { head: result });
  return entries;
}

function unpack(z: Buffer): Map<string, StoredObject> {
  let raw: Buffer;
  try {
    raw = inflateRawSync(z, { maxOutputLength: MAX_SYNC_RAW_BYTES });
  } catch (e) {
    if (e instanceof RangeError) throw new MmogitError('ERR_TOO_LARGE', 'pack expands beyond the limit');
    throw untrusted('pack is not a valid deflate stream');
  }
  const out = new Map<string, StoredObject>();
  let at = 0;
  while (at < raw.length) {
    if (at + 5 > raw.length) throw untrusted('truncated pack');
    const type = CODE_OBJ[raw[at] as number];
    const size = raw.readUInt32BE(at + 1);
    if (!type) throw untrusted(`unknown object type ${raw[at]}`);
    if (size > MAX_OBJECT_BYTES || (type === 'blob' && size > MAX_ENTRY_BYTES)) {
      throw new MmogitError('ERR_TOO_LARGE', `peer sent a ${size}-byte ${type}`, { details: { size } });
    }
    if (at + 5 + size > raw.length) throw untrusted('truncated pack');
    const content = new Uint8Array(raw.subarray(at + 5, at + 5 + size));
    // Ids are computed here, never taken from the peer.
    const o = makeObject(type, content);
    out.set(o.oid, o);
    at += 5 + size;
  }
  return out;
}

/**
 * Checks a received object set before anything is stored: every commit reachable from `head` through the set is
 * well-formed with parents present; every tree follows the entry layout exactly; every new entry is canonical,
 * named by its hash, public, by an accepted author, and correctly signed; nothing unreferenced. Returns the
 * number of new entries.
 */
async function verifyIncoming(
  ctx: PhaseContext,
  head: string | null,
  objects: Map<string, StoredObject>,
): Promise<number> {
  const { store } = ctx;
  if (!head || !objects.has(head)) throw untrusted('pack does not contain the offered head');
  const used = new Set<string>();
  const decoded: DecodedEntry[] = [];
  const fileOf = new Map<DecodedEntry, Uint8Array>();
  const decodedIds = new Set<string>();
  const seenTree = new Set<string>();
  const get = (oid: string, type: ObjectType): StoredObject | null => {
    const o = objects.get(oid);
    if (!o) {
      if (!store.odb.has(oid)) throw untrusted(`pack is incomplete: ${type} ${oid} missing`);
      return null;
    }
    if (o.type !== type) throw untrusted(`${oid} is a ${o.type}, expected a ${type}`);
    used.add(oid);
    return o;
  };
  const checkTree = (oid: string, depth: number, prefix: string) => {
    const key = `${oid}:${prefix}`;
    if (seenTree.has(key)) return;
    seenTree.add(key);
    const o = get(oid, 'tree');
    if (!o) return; // ours already
    const entries = parseTree(o.content);
    if (Buffer.compare(Buffer.from(encodeTree(entries)), Buffer.from(o.content)) !== 0) {
      throw untrusted('tree is not in canonical git form');
    }
    const names = new Set<string>();
    for (const e of entries) {
      if (names.has(e.name)) throw untrusted('duplicate tree entry');
      names.add(e.name);
      if (depth === 0) {
        if (e.name !== 'entries' || e.mode !== MODE_TREE) throw untrusted(`unexpected path ${e.name}`);
        checkTree(e.oid, 1, '');
      } else if (depth < 4) {
        if (!/^[0-9a-f]$/.test(e.name) || e.mode !== MODE_TREE)
          throw untrusted(`unexpected path ${prefix}${e.name}`);
        checkTree(e.oid, depth + 1, prefix + e.name);
      } else {
        const m = /^([0-9a-f]{64})\.json$/.exec(e.name);
        if (!m || e.mode !== MODE_FILE || !e.name.startsWith(prefix)) {
          throw untrusted(`unexpected path ${prefix}/${e.name}`);
        }
        const blob = get(e.oid, 'blob');
        if (blob && !decodedIds.has(m[1] as string)) {
          decodedIds.add(m[1] as string);
          const d = decodeEntry(blob.content, m[1], { checkSignature: false });
          if (!d.entry || d.problem !== UNCHECKED) {
            throw untrusted(`entry ${m[1]} is invalid: ${d.problem}`, { id: m[1] });
          }
          if (d.entry.visibility !== 'public') throw untrusted(`entry ${m[1]} is not public`);
          if (ctx.options.acceptAuthor && !ctx.options.acceptAuthor(d.entry.author)) {
            throw untrusted(`entry ${m[1]} is by an author this peer may not relay`, {
              author: d.entry.author,
            });
          }
          decoded.push(d);
          fileOf.set(d, blob.content);
        }
      }
    }
  };
  const stack = [head];
  const seenCommit = new Set<string>();
  while (stack.length > 0) {
    const oid = stack.pop() as string;
    if (seenCommit.has(oid)) continue;
    seenCommit.add(oid);
    const o = get(oid, 'commit');
    if (!o) continue;
    const c = parseCommit(o.content);
    if (Buffer.compare(Buffer.from(encodeCommit(c)), Buffer.from(o.content)) !== 0) {
      throw untrusted('commit is not in the form mmogit writes');
    }
    checkTree(c.tree, 0, '');
    stack.push(...c.parents);
  }
  for (const oid of objects.keys()) if (!used.has(oid)) throw untrusted(`unreferenced object ${oid}`);
  const ok = await verifyMany(
    decoded.map((d) => signatureItem(d.entry as NonNullable<DecodedEntry['entry']>, fileOf.get(d))),
  );
  const bad = ok.findIndex((v) => !v);
  if (bad >= 0) {
    throw new MmogitError('ERR_BAD_SIGNATURE', `entry ${decoded[bad]?.id} has a forged signature`, {
      details: { id: decoded[bad]?.id },
    });
  }
  ctx.progress({ stage: 'verify', objects: objects.size, entries: decoded.length });
  return decoded.length;
}

/** Is `ancestor` reachable from `from`? Commit times never decrease along our histories, which bounds the walk. */
function isAncestor(store: MemoryStore, ancestor: string, from: string): boolean {
  const floor = store.readCommit(ancestor).time;
  const stack = [from];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const oid = stack.pop() as string;
    if (oid === ancestor) return true;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const c = store.readCommit(oid);
    if (c.time < floor) continue;
    stack.push(...c.parents);
  }
  return false;
}

/**
 * Moves `main` to include `theirs`: nothing if we already contain it, a fast-forward if it contains us, else the
 * union merge. The merge commit is a pure function of the two parents (sorted parents, union tree, fixed ident,
 * time = the later parent's), so both peers compute the same id.
 */
async function integrate(ctx: PhaseContext, theirs: string | null): Promise<string | null> {
  const { store } = ctx;
  return store.exclusive(async () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const ours = readRef(store.dir, PUBLIC_REF);
      let next: string;
      let mode: 'none' | 'fast-forward' | 'merge';
      if (!theirs || ours === theirs || (ours && isAncestor(store, theirs, ours))) {
        ctx.progress({ stage: 'integrate', head: ours, mode: 'none' });
        return ours;
      }
      if (!ours || isAncestor(store, ours, theirs)) {
        next = theirs;
        mode = 'fast-forward';
      } else {
        const parents = [ours, theirs].sort();
        const [a, b] = parents.map((p) => store.readCommit(p)) as [
          ReturnType<MemoryStore['readCommit']>,
          ReturnType<MemoryStore['readCommit']>,
        ];
        const objects: StoredObject[] = [];
        const tree = store.unionTrees(a.tree, b.tree, objects);
        const merge = makeObject(
          'commit',
          encodeCommit({
            tree,
            parents,
            ident: COMMIT_IDENT,
            time: Math.max(a.time, b.time),
            message: 'merge\n',
          }),
        );
        objects.push(merge);
        store.odb.write(objects);
        next = merge.oid;
        mode = 'merge';
      }
      if (updateRef(store.dir, PUBLIC_REF, next, ours)) {
        ctx.progress({ stage: 'integrate', head: next, mode });
        return next;
      }
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
    throw new MmogitError('ERR_SYNC', 'could not update main: another writer keeps moving it');
  });
}
