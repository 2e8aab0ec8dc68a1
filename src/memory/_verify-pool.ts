import { type KeyObject, verify as nodeVerify } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { publicKeyObject } from '../identity/signing.js';

/**
 * Verifies many Ed25519 signatures across CPU cores. Verification is the cost of recall (0.13 ms each with
 * Node's crypto, 10k entries ≈ 1.3 s on one core); the libuv-threadpool form of `crypto.verify` was no faster
 * here, so batches go to `worker_threads` while this thread takes its own share. Only public data (messages,
 * signatures, public keys) crosses to the workers.
 * @module
 */

/** One signature to check: `message` is the full signed byte string (with the domain prefix). */
export interface VerifyItem {
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
}

/** Below this many items the pool is not worth its messaging. */
export const PARALLEL_MIN = 512;

// Plain CommonJS so it runs with `eval: true` (no build step, works from TS sources and from dist).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { verify, createPublicKey } = require('node:crypto');
const PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
parentPort.on('message', ({ id, buf, offsets }) => {
  const out = new Uint8Array(offsets.length - 1);
  const b = Buffer.from(buf);
  for (let i = 0; i + 1 < offsets.length; i++) {
    const s = offsets[i];
    const e = offsets[i + 1];
    const pk = b.subarray(s, s + 32);
    const hex = pk.toString('hex');
    let k = keys.get(hex);
    if (!k) { k = createPublicKey({ key: Buffer.concat([PREFIX, pk]), format: 'der', type: 'spki' }); keys.set(hex, k); }
    try { out[i] = verify(null, b.subarray(s + 96, e), k, b.subarray(s + 32, s + 96)) ? 1 : 0; } catch { out[i] = 0; }
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Pending {
  resolve: (v: Uint8Array) => void;
  reject: (e: unknown) => void;
}

let workers: Worker[] | null = null;
const waiting = new Map<number, Pending>();
/** Batch id → the worker it was sent to (a worker with a batch out is ref'd). */
const busy = new Map<number, Worker>();
let nextId = 1;

function pool(): Worker[] {
  if (workers) return workers;
  const n = Math.max(0, Math.min(availableParallelism() - 1, 7));
  workers = Array.from({ length: n }, () => {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', ({ id, out }: { id: number; out: Uint8Array }) => {
      const p = waiting.get(id);
      waiting.delete(id);
      if (busy.delete(id) && ![...busy.values()].includes(w)) w.unref();
      p?.resolve(out);
    });
    w.on('error', (e) => {
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
      busy.clear();
      workers = null;
    });
    // An idle pool must not keep the process alive, a busy one must (else a process whose only pending work
    // is a batch in a worker exits before the answer). Adding a 'message' listener refs the worker again, so
    // this comes after the listeners: a pool unref'd before them kept every process that once verified
    // ≥ PARALLEL_MIN signatures alive after its work was done (a CLI `recall` of 512+ entries printed its
    // answer and never exited). send() refs a worker for each batch; the answer unrefs it when it is idle.
    w.unref();
    return w;
  });
  return workers;
}

const keyCache = new Map<string, KeyObject>();
function verifyHere(item: VerifyItem): boolean {
  const hex = Buffer.from(item.publicKey).toString('hex');
  let k = keyCache.get(hex);
  try {
    if (!k) {
      k = publicKeyObject(item.publicKey);
      if (keyCache.size > 4096) keyCache.clear();
      keyCache.set(hex, k);
    }
    return nodeVerify(null, item.message, k, item.signature);
  } catch {
    return false;
  }
}

function send(worker: Worker, items: VerifyItem[]): Promise<Uint8Array> {
  let size = 0;
  for (const it of items) size += 96 + it.message.length;
  const buf = new Uint8Array(size);
  const offsets = new Array<number>(items.length + 1);
  let at = 0;
  items.forEach((it, i) => {
    offsets[i] = at;
    buf.set(it.publicKey.subarray(0, 32), at);
    buf.set(it.signature.length === 64 ? it.signature : new Uint8Array(64), at + 32);
    buf.set(it.message, at + 96);
    at += 96 + it.message.length;
  });
  offsets[items.length] = at;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    busy.set(id, worker);
    worker.ref();
    worker.postMessage({ id, buf: buf.buffer, offsets }, [buf.buffer]);
  });
}

/** Verifies every item; result `i` is true iff item `i`'s signature is valid. */
export async function verifyMany(items: readonly VerifyItem[]): Promise<boolean[]> {
  const valid = (it: VerifyItem) => it.publicKey.length === 32 && it.signature.length === 64;
  const ws = items.length >= PARALLEL_MIN ? pool() : [];
  if (ws.length === 0) return items.map((it) => valid(it) && verifyHere(it));
  const share = Math.ceil(items.length / (ws.length + 1));
  const jobs = ws.map((w, i) => send(w, items.slice((i + 1) * share, (i + 2) * share) as VerifyItem[]));
  const mine = items.slice(0, share).map((it) => valid(it) && verifyHere(it));
  const theirs = await Promise.all(jobs);
  const out = [...mine];
  theirs.forEach((r, j) => {
    const base = (j + 1) * share;
    r.forEach((v, k) => {
      out.push(v === 1 && valid(items[base + k] as VerifyItem));
    });
  });
  return out;
}
