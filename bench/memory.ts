/**
 * Benchmarks of the git-backed memory (src/memory), each against real git in the same run:
 * - {@link benchRemember10k}: 10,000 `remember()` calls vs `git fast-import` of the same files and commits;
 * - {@link benchRecallVerify10k}: recall + signature check of all 10,000 from a freshly opened store;
 * - {@link benchSync1k}: sync of 1,000 new memory commits on a 1,000-commit base vs `git fetch` (time, bytes);
 * - {@link benchSyncNoop}: a sync with nothing new.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/memory.js`.
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { type KeyObject, verify } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { publicKeyObject } from '../src/identity/signing.js';
import type { VerifyItem } from '../src/memory/_verify-pool.js';
import { decodeEntry, type MemoryInput, signatureItem } from '../src/memory/entry.js';
import { MemoryStore } from '../src/memory/store.js';
import { type SyncResult, syncOverChannel } from '../src/memory/sync/index.js';
import { channelFromDuplex } from '../src/transport/byte-channel.js';
import { type BenchResult, median, round } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/memory.js';
const N = 10_000;
const WAVE = 100;

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `mmogit-bench-${p}-`));
const dirs: string[] = [];
const cleanup = () => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
};
process.once('exit', cleanup);

function input(i: number): MemoryInput {
  return {
    type: 'observation',
    content: `observation ${i}: the peer at hop ${i % 7} answered in ${(i * 37) % 900} ms over the onion circuit`,
    tags: ['bench', `t${i % 10}`],
    confidence: 0.75,
  };
}

let tenK: Promise<{ dir: string; key: AgentKey; ms: number }> | null = null;

/** 10,000 memories written through the SDK: `remember()` called in waves of 100 concurrent calls (one commit each). */
function rememberTenK(): Promise<{ dir: string; key: AgentKey; ms: number }> {
  tenK ??= (async () => {
    const root = tmp('remember');
    dirs.push(root);
    const key = AgentKey.random();
    const store = await MemoryStore.open(join(root, 'memory'), key);
    const t0 = performance.now();
    for (let w = 0; w < N; w += WAVE) {
      await Promise.all(Array.from({ length: WAVE }, (_, i) => store.remember(input(w + i))));
    }
    const ms = performance.now() - t0;
    await store.close();
    return { dir: join(root, 'memory'), key, ms };
  })();
  return tenK;
}

/** A fast-import stream with the same files at the same paths in the same commits as `dir`'s history. */
function fastImportStream(dir: string): Buffer {
  const commits = execFileSync('git', ['-C', dir, 'rev-list', '--reverse', 'main'], { encoding: 'utf8' })
    .trim()
    .split('\n');
  const parts: Buffer[] = [];
  let prev: string | null = null;
  for (const [i, c] of commits.entries()) {
    const diff = execFileSync(
      'git',
      ['-C', dir, 'diff-tree', '-r', '--no-commit-id', '--root', '--name-only', c],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
    )
      .trim()
      .split('\n')
      .filter(Boolean);
    const blobs = execFileSync('git', ['-C', dir, 'cat-file', '--batch'], {
      input: diff.map((p) => `${c}:${p}`).join('\n'),
      maxBuffer: 256 << 20,
    });
    parts.push(
      Buffer.from(
        `commit refs/heads/main\nmark :${i + 1}\ncommitter mmogit <m@localhost> 1700000000 +0000\ndata 3\nx\n\n`,
      ),
    );
    if (prev) parts.push(Buffer.from(`from :${i}\n`));
    let at = 0;
    for (const p of diff) {
      const nl = blobs.indexOf(10, at);
      const size = Number(blobs.subarray(at, nl).toString().split(' ')[2]);
      const data = blobs.subarray(nl + 1, nl + 1 + size);
      at = nl + 1 + size + 1;
      parts.push(Buffer.from(`M 100644 inline ${p}\ndata ${size}\n`), data, Buffer.from('\n'));
    }
    parts.push(Buffer.from('\n'));
    prev = c;
  }
  return Buffer.concat(parts);
}

/** remember 10,000 memories through the SDK vs `git fast-import` of the same data (target ratio ≤ 3). */
export async function benchRemember10k(): Promise<BenchResult> {
  const { dir, ms } = await rememberTenK();
  const stream = fastImportStream(dir);
  const git = tmp('fastimport');
  dirs.push(git);
  execFileSync('git', ['init', '-q', '--bare', git]);
  const t0 = performance.now();
  const r = spawnSync('git', ['-C', git, 'fast-import', '--quiet'], { input: stream, maxBuffer: 64 << 20 });
  const anchor = performance.now() - t0;
  if (r.status !== 0) throw new Error(`git fast-import failed: ${r.stderr}`);
  return {
    name: 'remember 10,000 memories through the SDK vs git fast-import',
    value: Math.round(ms),
    unit: 'ms',
    anchor: Math.round(anchor),
    ratio: ms / anchor,
    target: 3,
    command: COMMAND,
    notes: `${N} remember() calls in waves of ${WAVE} concurrent calls (${N / WAVE} commits, signed entries); fast-import gets the same files at the same paths in the same ${N / WAVE} commits`,
  };
}

/**
 * The goal of recall/verify over 10,000 memories, as a ratio to the same run's anchor (git reading the same
 * objects plus node:crypto checking the same signatures). It was ≤ 2,000 ms; when it became a ratio the anchor
 * took 0.99 s here (recall 1.34 s), and 2,000 ms over that anchor is ≈ 2.
 */
export const RECALL_TARGET_RATIO = 2;
/** The goal's absolute form, kept in the notes. */
export const RECALL_GOAL_MS = 2_000;

/**
 * What recall/verify cannot beat without skipping work: `git cat-file --batch` of the objects a cold recall
 * reads (every tree and blob of the head, listed by `git ls-tree -r -t` beforehand), then one `crypto.verify`
 * per entry signature, one after another in this thread. Returns the two times (ms) and how many signatures.
 */
function rawReadAndVerify(dir: string): { readMs: number; verifyMs: number; signatures: number } {
  const ids = execFileSync('git', ['-C', dir, 'ls-tree', '-r', '-t', 'main'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
    .trim()
    .split('\n')
    .map((line) => line.split(/\s+/)[2] as string);
  const t0 = performance.now();
  const out = execFileSync('git', ['-C', dir, 'cat-file', '--batch'], {
    input: `${ids.join('\n')}\n`,
    maxBuffer: 256 << 20,
  });
  const readMs = performance.now() - t0;
  // Outside the timing: cut the signed messages out of the entry blobs, as the store's batch check does.
  const items: VerifyItem[] = [];
  for (let at = 0; at < out.length; ) {
    const nl = out.indexOf(10, at);
    const [, type, size] = out.subarray(at, nl).toString().split(' ');
    const data = out.subarray(nl + 1, nl + 1 + Number(size));
    at = nl + 1 + Number(size) + 1;
    if (type !== 'blob') continue;
    const decoded = decodeEntry(data, undefined, { checkSignature: false });
    if (decoded.entry) items.push(signatureItem(decoded.entry, data));
  }
  const keys = new Map<string, KeyObject>();
  const keyOf = (raw: Uint8Array) => {
    const hex = Buffer.from(raw).toString('hex');
    const known = keys.get(hex);
    if (known) return known;
    const k = publicKeyObject(raw);
    keys.set(hex, k);
    return k;
  };
  const t1 = performance.now();
  for (const it of items) {
    if (!verify(null, it.message, keyOf(it.publicKey), it.signature)) throw new Error('a raw verify failed');
  }
  return { readMs, verifyMs: performance.now() - t1, signatures: items.length };
}

/**
 * recall + verify all 10,000 memories from a freshly opened store, against {@link rawReadAndVerify} of the same
 * repository (goal: ratio ≤ {@link RECALL_TARGET_RATIO}).
 */
export async function benchRecallVerify10k(): Promise<BenchResult> {
  const { dir, key } = await rememberTenK();
  const store = await MemoryStore.open(dir, key);
  const t0 = performance.now();
  const all = await store.recall();
  const ms = performance.now() - t0;
  await store.close();
  const unverified = all.filter((e) => !e.verified).length;
  if (all.length !== N || unverified > 0)
    throw new Error(`recall returned ${all.length}, ${unverified} unverified`);
  const raw = rawReadAndVerify(dir);
  if (raw.signatures !== N) throw new Error(`the anchor found ${raw.signatures} signatures, not ${N}`);
  const anchor = raw.readMs + raw.verifyMs;
  return {
    name: 'recall/verify 10,000 memories',
    value: Math.round(ms),
    unit: 'ms',
    anchor: Math.round(anchor),
    ratio: ms / anchor,
    target: RECALL_TARGET_RATIO,
    targetOn: 'ratio',
    targetOp: '<=',
    command: COMMAND,
    notes:
      'cold store: every tree and entry read from disk, parsed, and its Ed25519 signature checked; anchor = ' +
      `\`git cat-file --batch\` of the head's trees and blobs (${Math.round(raw.readMs)} ms) + ${raw.signatures} ` +
      `raw \`crypto.verify\` calls of the same signatures in one thread (${Math.round(raw.verifyMs)} ms); ` +
      `absolute goal ≤ ${RECALL_GOAL_MS} ms: ${ms <= RECALL_GOAL_MS ? 'met' : 'not met'} in this run`,
  };
}

async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  const sock = await accepted;
  return [
    client,
    sock,
    () => {
      client.destroy();
      sock.destroy();
      server.close();
    },
  ];
}

async function syncPair(a: MemoryStore, b: MemoryStore): Promise<SyncResult> {
  const [ca, cb, done] = await socketPair();
  try {
    const [ra] = await Promise.all([
      syncOverChannel(a, channelFromDuplex(ca), {
        role: 'initiator',
        peer: { publicKey: b.key.publicKey, onion: b.key.onion },
      }),
      syncOverChannel(b, channelFromDuplex(cb), {
        role: 'responder',
        peer: { publicKey: a.key.publicKey, onion: a.key.onion },
      }),
    ]);
    return ra;
  } finally {
    done();
  }
}

let syncState: Promise<{ a: MemoryStore; b: MemoryStore }> | null = null;

/** Sync 1,000 new memory commits (on a 1,000-commit shared base) vs `git fetch` between the same repos. */
export async function benchSync1k(): Promise<BenchResult[]> {
  const root = tmp('sync');
  dirs.push(root);
  const a = await MemoryStore.open(join(root, 'a'), AgentKey.random());
  const b = await MemoryStore.open(join(root, 'b'), AgentKey.random());
  for (let i = 0; i < 1000; i++) await a.remember(input(i));
  await syncPair(b, a);
  for (let i = 1000; i < 2000; i++) await a.remember(input(i));
  const bGit = join(root, 'b-git');
  cpSync(b.dir, bGit, { recursive: true });
  const ours = await syncPair(b, a);
  if (ours.received !== 1000 || ours.head !== (await a.head())) throw new Error('sync did not converge');
  const t0 = performance.now();
  execFileSync('git', ['-C', bGit, 'fetch', '-q', a.dir, 'main:main']);
  const fetchMs = performance.now() - t0;
  // What upload-pack sends for this fetch: a thin pack of A's head minus B's old head.
  const before = execFileSync('git', ['-C', bGit, 'rev-parse', 'main~1000'], { encoding: 'utf8' }).trim();
  const pack = execFileSync('git', ['-C', a.dir, 'pack-objects', '--revs', '--thin', '--stdout', '-q'], {
    input: `${await a.head()}\n^${before}\n`,
    maxBuffer: 256 << 20,
  });
  syncState = Promise.resolve({ a, b });
  const wire = ours.bytesSent + ours.bytesReceived;
  return [
    {
      name: 'sync 1,000 new memories vs git fetch (time)',
      value: Math.round(ours.ms),
      unit: 'ms',
      anchor: Math.round(fetchMs),
      ratio: ours.ms / fetchMs,
      target: 2,
      command: COMMAND,
      notes:
        'loopback TCP, no PQ channel; 1,000 one-memory commits on a 1,000-commit base; git fetch between the same two repos on disk',
    },
    {
      name: 'sync 1,000 new memories vs git fetch (bytes on the wire)',
      value: wire,
      unit: 'bytes',
      anchor: pack.length,
      ratio: wire / pack.length,
      target: 1.5,
      command: COMMAND,
      notes:
        'ours: every frame both ways; git: the thin pack upload-pack sends for the same fetch (negotiation not counted)',
    },
  ];
}

/** A sync with nothing new on either side (target ≤ 50 ms). */
export async function benchSyncNoop(): Promise<BenchResult> {
  let state = await syncState;
  if (!state) {
    const root = tmp('noop');
    dirs.push(root);
    const a = await MemoryStore.open(join(root, 'a'), AgentKey.random());
    const b = await MemoryStore.open(join(root, 'b'), AgentKey.random());
    await a.rememberMany(Array.from({ length: 1000 }, (_, i) => input(i)));
    await syncPair(b, a);
    state = { a, b };
  }
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await syncPair(state.b, state.a)).ms);
  return {
    name: 'no-op sync (nothing new)',
    value: round(median(times)),
    unit: 'ms',
    target: 50,
    command: COMMAND,
    notes: 'median of 5, loopback TCP, 2,000-memory repos already in sync',
  };
}

/** The git-backed memory against real git. */
export const bench: BenchModule = {
  name: 'memory',
  needsTor: false,
  run: {
    benchRemember10k: () => benchRemember10k(),
    benchRecallVerify10k: () => benchRecallVerify10k(),
    benchSync1k: () => benchSync1k(),
    benchSyncNoop: () => benchSyncNoop(),
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const fn of [benchRemember10k, benchRecallVerify10k, benchSync1k, benchSyncNoop]) {
    console.log(JSON.stringify(await fn()));
  }
  cleanup();
}
