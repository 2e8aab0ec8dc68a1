import { once } from 'node:events';
import { createDeflateRaw } from 'node:zlib';
import { MmogitError } from '../../errors.js';
import { SIGNING_CONTEXTS } from '../../identity/signing.js';
import { MODE_TREE, type ObjectType, type TreeEntry } from '../_git.js';
import { pacer } from '../_pace.js';
import type { StoredObject } from '../odb.js';
import type { SyncPort } from '../sync-port.js';
import { decodeResult, decodeWant, T } from './frames.js';
import { MAX_SYNC_OBJECTS, MAX_SYNC_RAW_BYTES, OBJECT_HEADER_BYTES, PACK_CHUNK_BYTES } from './limits.js';
import { findMissing } from './negotiate.js';
import { refStatement } from './statement.js';
import type { PhaseContext } from './types.js';

/**
 * The sending phase: offer our signed head, and if the peer needs it, negotiate and stream the missing
 * objects. Returns the number of entries sent.
 * @module
 */

const OBJ_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };
/** Raw bytes handed to the compressor at once (one thread-pool job each). */
const DEFLATE_BATCH_BYTES = 256 * 1024;

export async function sendPhase(ctx: PhaseContext): Promise<number> {
  const { port, wire } = ctx;
  const head = port.head();
  const statement = refStatement(ctx.me, ctx.peer.onion, ctx.peerNonce, head);
  const sig = Buffer.from(port.key.sign(SIGNING_CONTEXTS.syncRef, statement)).toString('hex');
  await wire.send(T.ref, { head, sig });
  const want = decodeWant(await wire.expect(T.want));
  let entries = 0;
  if (want.need && head) {
    const missing = await findMissing(ctx, head);
    const { objects, blobs } = await collectObjects(port, missing);
    entries = blobs;
    await sendPack(ctx, objects);
  }
  decodeResult(await wire.expect(T.result));
  return entries;
}

/**
 * Objects of `commits` that the peer lacks: each commit, and in its tree only what differs from all of its
 * parents' trees at the same path (the peer has or receives those). Refuses to send a private entry.
 */
async function collectObjects(
  port: SyncPort,
  commits: string[],
): Promise<{ objects: StoredObject[]; blobs: number }> {
  const objects: StoredObject[] = [];
  const sent = new Set<string>();
  const tick = pacer();
  let blobs = 0;
  let rawBytes = 0;
  const push = (type: ObjectType, oid: string, content: Uint8Array) => {
    objects.push({ type, oid, content });
    rawBytes += OBJECT_HEADER_BYTES + content.length;
    if (objects.length > MAX_SYNC_OBJECTS || rawBytes > MAX_SYNC_RAW_BYTES) {
      throw new MmogitError('ERR_TOO_LARGE', 'the history to send exceeds what one sync may carry', {
        details: { objects: objects.length, rawBytes },
      });
    }
  };
  const read = (oid: string, type: ObjectType): Uint8Array => {
    const o = port.readObject(oid);
    if (!o || o.type !== type) throw new MmogitError('ERR_INTERNAL', `our ${type} ${oid} is missing`);
    return o.content;
  };
  const addTree = async (oid: string, bases: string[]) => {
    if (sent.has(oid) || bases.includes(oid)) return;
    sent.add(oid);
    push('tree', oid, read(oid, 'tree'));
    const baseEntries = bases.map((b) => new Map(port.readTree(b).map((e) => [e.name, e])));
    for (const e of port.readTree(oid)) {
      const same = baseEntries.map((m) => m.get(e.name)).filter((x): x is TreeEntry => x !== undefined);
      if (same.some((x) => x.oid === e.oid)) continue;
      if (e.mode === MODE_TREE) {
        await addTree(
          e.oid,
          same.filter((x) => x.mode === MODE_TREE).map((x) => x.oid),
        );
      } else if (!sent.has(e.oid)) {
        sent.add(e.oid);
        const content = read(e.oid, 'blob');
        // Belt and braces: private entries live on another branch, but never let one out.
        if (!isPublicEntry(content)) {
          throw new MmogitError('ERR_INTERNAL', `refusing to send non-public entry ${e.name}`);
        }
        push('blob', e.oid, content);
        blobs++;
      }
      await tick();
    }
  };
  for (const oid of commits) {
    const c = port.readCommit(oid);
    push('commit', oid, read(oid, 'commit'));
    sent.add(oid);
    await addTree(
      c.tree,
      c.parents.map((p) => port.readCommit(p).tree),
    );
  }
  return { objects, blobs };
}

const decoder = new TextDecoder();

function isPublicEntry(content: Uint8Array): boolean {
  try {
    return (JSON.parse(decoder.decode(content)) as { visibility?: unknown } | null)?.visibility === 'public';
  } catch {
    return false;
  }
}

/**
 * Announces the pack (`PACK-INFO {objects, rawBytes}`), then streams it: each object as `type(1) ‖ size(u32
 * BE) ‖ content`, the whole stream raw-deflated once (so the compressor shares what repeats across objects:
 * the author key in every entry, successive versions of a tree) and cut into PACK frames. The compressor runs
 * on the thread pool in batches, so a large pack never blocks the event loop.
 */
async function sendPack(ctx: PhaseContext, objects: StoredObject[]): Promise<void> {
  const { wire } = ctx;
  let rawBytes = 0;
  for (const o of objects) rawBytes += OBJECT_HEADER_BYTES + o.content.length;
  await wire.send(T.packInfo, { objects: objects.length, rawBytes });
  const z = createDeflateRaw({ level: 6 });
  let failure: Error | null = null;
  z.on('error', (e) => {
    failure = e;
  });
  const out: Buffer[] = [];
  let outBytes = 0;
  let sentBytes = 0;
  z.on('data', (c: Buffer) => {
    out.push(c);
    outBytes += c.length;
  });
  const flush = async (all: boolean) => {
    while (outBytes >= PACK_CHUNK_BYTES || (all && outBytes > 0)) {
      const buf = Buffer.concat(out.splice(0));
      const n = Math.min(PACK_CHUNK_BYTES, buf.length);
      if (n < buf.length) out.push(buf.subarray(n));
      outBytes = buf.length - n;
      sentBytes += n;
      await wire.send(T.pack, buf.subarray(0, n));
    }
  };
  const feed = (parts: Uint8Array[]) =>
    new Promise<void>((resolve, reject) => {
      z.write(Buffer.concat(parts), (e) => (e ? reject(e) : resolve()));
    });
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  for (const o of objects) {
    const h = Buffer.alloc(OBJECT_HEADER_BYTES);
    h[0] = OBJ_CODE[o.type];
    h.writeUInt32BE(o.content.length, 1);
    batch.push(h, o.content);
    batchBytes += OBJECT_HEADER_BYTES + o.content.length;
    if (batchBytes >= DEFLATE_BATCH_BYTES) {
      await feed(batch);
      batch = [];
      batchBytes = 0;
      await flush(false);
    }
  }
  if (batch.length > 0) await feed(batch);
  const ended = once(z, 'end');
  z.end();
  await ended;
  if (failure) throw new MmogitError('ERR_INTERNAL', 'compressing the pack failed', { cause: failure });
  await flush(true);
  await wire.send(T.packEnd, {});
  ctx.progress({ stage: 'send', objects: objects.length, bytes: sentBytes });
}
