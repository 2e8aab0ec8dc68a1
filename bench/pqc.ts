/**
 * Benchmarks of the post-quantum channel (src/pqc). Each function returns one result for the bench runner:
 * - {@link benchPqHandshakeCpu}: CPU time of one full hybrid handshake, both sides in this process;
 * - {@link benchPqThroughput}: a 10 MB payload through the channel vs the same bytes over the bare socket.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/pqc.js`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { SIGNING_CONTEXTS } from '../src/identity/signing.js';
import {
  MLKEM_BACKEND,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
  verifyEd25519,
  x25519Ephemeral,
  x25519Shared,
} from '../src/pqc/_primitives.js';
import { acceptSession, initiateSession } from '../src/pqc/index.js';
import { channelFromDuplex } from '../src/transport/byte-channel.js';
import { type BenchResult, median } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

/** Two connected byte streams: `a` writes, `b` reads (loopback TCP by default; through tor in bench/pqc-tor.ts). */
export interface StreamPair {
  a: Duplex;
  b: Duplex;
  close(): Promise<void>;
}

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/pqc.js';

/** A loopback TCP connection on 127.0.0.1 (Nagle off both ends, like the agents' sockets). */
export async function loopbackPair(): Promise<StreamPair> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    a.once('connect', resolve);
    a.once('error', reject);
  });
  const b = await accepted;
  a.setNoDelay(true);
  b.setNoDelay(true);
  return {
    a,
    b,
    close: async () => {
      a.destroy();
      b.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The handshake's goal: at most this many times the CPU of its bare primitives. */
export const HANDSHAKE_TARGET_RATIO = 2;
/** The goal's absolute form (both sides, ms), kept in the notes. */
export const HANDSHAKE_GOAL_MS = 5;

/**
 * CPU time (user + system, `process.cpuUsage`) of one complete hybrid handshake, initiator and responder both
 * in this process over loopback TCP; median of `runs` after `warmup`. Anchor: the CPU of just the primitives a
 * handshake needs, measured in the same loop (one primitives sample after each handshake, so load and CPU
 * frequency drift hit both alike). Goal: ratio ≤ {@link HANDSHAKE_TARGET_RATIO} (it was ≤ 5 ms for both sides
 * when the primitives took 2.5 ms here; the absolute figure stays in the notes).
 *
 * The warm-up is long on purpose: the primitives are native code, warm from the first call, while the
 * protocol's JavaScript (framing, transcript, session set-up) runs 2–3× slower until V8 has optimised it
 * (measured: Node 24, 3.4 ms a handshake after 5 warm-ups, 1.2–1.9 ms after 200). An agent pays the cold
 * price once per process, so the steady state is the figure; the first handshake is kept in the notes.
 */
export async function benchPqHandshakeCpu(
  options: { runs?: number; warmup?: number } = {},
): Promise<BenchResult> {
  const runs = options.runs ?? 200;
  const warmup = options.warmup ?? 50;
  const alice = AgentKey.random();
  const bob = AgentKey.random();
  const samples: number[] = [];
  const floors: number[] = [];
  let cold = 0;
  for (let n = 0; n < warmup + runs; n++) {
    const pair = await loopbackPair();
    const client = channelFromDuplex(pair.a);
    const server = channelFromDuplex(pair.b);
    const before = process.cpuUsage();
    const [i] = await Promise.all([
      initiateSession(client, alice, { expectedPeer: bob.onion }),
      acceptSession(server, bob),
    ]);
    const used = process.cpuUsage(before);
    if (i.suite !== 'hybrid-x25519-mlkem768') throw new Error('benchmark did not run the hybrid suite');
    const ms = (used.user + used.system) / 1000;
    if (n === 0) cold = ms;
    await pair.close();
    const floor = handshakePrimitivesCpu(alice, bob);
    if (n >= warmup) {
      samples.push(ms);
      floors.push(floor);
    }
  }
  const value = median(samples);
  const floor = median(floors);
  return {
    name: 'pq-handshake-cpu',
    value: Number(value.toFixed(3)),
    unit: 'ms',
    anchor: Number(floor.toFixed(3)),
    ratio: Number((value / floor).toFixed(3)),
    target: HANDSHAKE_TARGET_RATIO,
    targetOn: 'ratio',
    targetOp: '<=',
    command: COMMAND,
    notes:
      `median of ${runs} after ${warmup} warm-up handshakes (the first, cold: ${cold.toFixed(2)} ms); both sides ` +
      'in one process; X25519/Ed25519/AES-GCM from node:crypto, ML-KEM-768 from ' +
      `${MLKEM_BACKEND === 'node' ? 'node:crypto (OpenSSL)' : 'noble'} in both value and anchor; ` +
      'anchor = the median CPU of just the primitives a handshake needs, one sample after each handshake, called ' +
      'as src/pqc calls them (2 X25519 ephemerals + 2 DH, ML-KEM-768 keygen/encaps/decaps, 2 Ed25519 signs + 2 ' +
      'verifies from raw keys), so the ratio is the protocol’s overhead (framing, transcript, HKDF, AES-GCM, the ' +
      `socket round trips); absolute goal ≤ ${HANDSHAKE_GOAL_MS} ms: ${value <= HANDSHAKE_GOAL_MS ? 'met' : 'not met'} in this run`,
  };
}

/**
 * CPU (ms) of the bare cryptographic operations of one hybrid handshake, both sides, no protocol: the src/pqc
 * primitives as the handshake calls them (X25519 ephemerals from random bytes, ML-KEM-768 from the backend the
 * handshake uses, Ed25519 verified from the peer's raw 32-byte key), so a faster backend moves value and anchor
 * alike and the ratio stays the protocol's own overhead.
 */
function handshakePrimitivesCpu(a: AgentKey, b: AgentKey): number {
  const ctx = SIGNING_CONTEXTS.handshake;
  const transcript = new Uint8Array(randomBytes(32));
  const before = process.cpuUsage();
  const x1 = x25519Ephemeral();
  const x2 = x25519Ephemeral();
  x25519Shared(x1.privateKey, x2.publicKey);
  x25519Shared(x2.privateKey, x1.publicKey);
  const kem = mlkemKeygen();
  const enc = mlkemEncapsulate(kem.publicKey);
  if (!enc) throw new Error('ML-KEM encapsulation failed');
  mlkemDecapsulate(enc.cipherText, kem.secretKey);
  const sa = a.sign(ctx, transcript);
  const sb = b.sign(ctx, transcript);
  if (!verifyEd25519(ctx, transcript, sa, a.publicKey) || !verifyEd25519(ctx, transcript, sb, b.publicKey)) {
    throw new Error('Ed25519 verification failed');
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

async function bareTransfer(pair: StreamPair, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const started = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    let got = 0;
    const onData = (c: Buffer) => {
      got += c.length;
      if (got >= bytes) {
        pair.b.off('data', onData);
        resolve();
      }
    };
    pair.b.on('data', onData);
    pair.b.once('error', reject);
  });
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const piece = sent + chunk.length > bytes ? chunk.subarray(0, bytes - sent) : chunk;
    if (!pair.a.write(piece)) await new Promise<void>((resolve) => pair.a.once('drain', resolve));
  }
  await done;
  return performance.now() - started;
}

async function channelTransfer(pair: StreamPair, bytes: number): Promise<number> {
  const alice = AgentKey.random();
  const bob = AgentKey.random();
  const [i, r] = await Promise.all([
    initiateSession(channelFromDuplex(pair.a), alice, { expectedPeer: bob.onion, maxPayload: bytes }),
    acceptSession(channelFromDuplex(pair.b), bob, { maxPayload: bytes }),
  ]);
  const payload = new Uint8Array(bytes).fill(0x5a);
  const started = performance.now();
  const [, got] = await Promise.all([i.send(payload), r.receive()]);
  const ms = performance.now() - started;
  if (got?.length !== bytes) throw new Error('channel transfer lost bytes');
  return ms;
}

/**
 * Throughput of one `bytes`-sized payload (default 10 MB) through the secure channel vs the same bytes written
 * raw to the same kind of connection; median of `runs` each. `pair` makes the connection (default loopback
 * TCP, where the socket is far faster than tor and so the ratio is a lower bound; pass a tor pair to measure
 * the goal "≥ 0.90× a bare socket through tor").
 */
export async function benchPqThroughput(
  options: {
    bytes?: number;
    runs?: number;
    pair?: () => Promise<StreamPair>;
    /** Names the connection kind in `name` and `notes` (e.g. 'tor'). */
    label?: string;
    command?: string;
  } = {},
): Promise<BenchResult> {
  const bytes = options.bytes ?? 10_000_000;
  const runs = options.runs ?? 5;
  const makePair = options.pair ?? loopbackPair;
  const bare: number[] = [];
  const secure: number[] = [];
  for (let n = 0; n < runs + 1; n++) {
    // Alternate the order so drift in the connection's speed (tor) hits both alike.
    const runBare = async () => {
      const p = await makePair();
      try {
        return await bareTransfer(p, bytes);
      } finally {
        await p.close();
      }
    };
    const runSecure = async () => {
      const p = await makePair();
      try {
        return await channelTransfer(p, bytes);
      } finally {
        await p.close();
      }
    };
    let tBare: number;
    let tSecure: number;
    if (n % 2 === 0) {
      tBare = await runBare();
      tSecure = await runSecure();
    } else {
      tSecure = await runSecure();
      tBare = await runBare();
    }
    if (n > 0) {
      bare.push(tBare);
      secure.push(tSecure);
    }
  }
  const mib = bytes / (1024 * 1024);
  const bareRate = mib / (median(bare) / 1000);
  const secureRate = mib / (median(secure) / 1000);
  return {
    name: `pq-channel-throughput${options.label ? `-${options.label}` : ''}`,
    value: Number(secureRate.toFixed(1)),
    unit: 'MiB/s',
    anchor: Number(bareRate.toFixed(1)),
    ratio: Number((secureRate / bareRate).toFixed(3)),
    target: 0.9,
    command: options.command ?? COMMAND,
    notes: `${bytes} B payload, median of ${runs}; anchor = bare socket MiB/s on the same connection kind (${options.label ?? 'loopback TCP'})${options.pair ? '' : '; loopback is far faster than tor, so this ratio is a lower bound'}`,
  };
}

/** The PQ channel's CPU and loopback throughput (its tor throughput is in pqc-tor.ts). */
export const bench: BenchModule = {
  name: 'pqc',
  needsTor: false,
  timeoutMs: 120_000,
  run: { benchPqHandshakeCpu: () => benchPqHandshakeCpu(), benchPqThroughput: () => benchPqThroughput() },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = [await benchPqHandshakeCpu(), await benchPqThroughput()];
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}
