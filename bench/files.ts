/**
 * Benchmark of file transfer over the private Tor network (issue 12, "Round trip"): `agent.sendFile()` of a
 * file (100 MiB; `MMOGIT_BENCH_FILE_MB` for quick checks) from one agent to another through their own tors,
 * timed until the sender holds the receiver's signed ack (sent only once the file is complete, sha256-verified
 * and stored), vs a bare TCP stream of as many bytes through the same two tors in the same run: a plain
 * socket sink behind an onion on the receiver's tor, dialled through the sender's SOCKS port, that counts
 * and hashes the bytes and answers with the digest. Ratio ours ÷ bare MiB/s (higher is better); goal ≥ 0.9.
 * Progress goes to stderr. The network is `MMOGIT_TEST_NETWORK` (a testnet dir) when set, else a private one
 * started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/files.js`.
 * @module
 */
import '../src/_polyfill.js';
import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { retry } from '../src/_async.js';
import { Agent } from '../src/agent/agent.js';
import { AgentKey } from '../src/identity/keys.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { socksConnect } from '../src/tor/socks.js';
import { BARE_DIAL_RETRY, type BenchResult, median, round, tempScope, useNetwork } from './_shared.js';
import type { BenchModule } from './_types.js';

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/files.js';
/** The goal: a file's throughput at least 0.9× a bare socket's through the same tors. */
export const FILE_THROUGHPUT_TARGET_RATIO = 0.9;
const MIB = 1024 * 1024;
const VPORT = 4001;
const log = (s: string) => process.stderr.write(`[bench files] ${s}\n`);

/** File size in bytes: `MMOGIT_BENCH_FILE_MB` MiB when set (quick checks), else 100 MiB. */
function fileBytes(): number {
  const mb = Number(process.env.MMOGIT_BENCH_FILE_MB);
  return Math.round((Number.isFinite(mb) && mb > 0 ? mb : 100) * MIB);
}

export interface FilesBenchSetup {
  a: Agent;
  b: Agent;
  /** The file to send and its digest. */
  file: { path: string; size: number; sha256: string };
  /** Milliseconds to stream the file's bytes through the tors to the bare sink until it answers their digest. */
  bareStream(signal: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/** A file of `size` pseudo-random bytes (incompressible, like real payloads) and its sha256. */
async function writeFile(
  path: string,
  size: number,
): Promise<{ path: string; size: number; sha256: string }> {
  const h = createHash('sha256');
  const fh = await open(path, 'w', 0o600);
  try {
    // A cheap deterministic generator: sha256 in counter mode, 1 MiB at a time.
    const block = Buffer.alloc(MIB);
    for (let off = 0, n = 0; off < size; off += MIB) {
      for (let i = 0; i < MIB; i += 32) createHash('sha256').update(`${n++}`).digest().copy(block, i);
      const part = block.subarray(0, Math.min(MIB, size - off));
      h.update(part);
      await fh.write(part);
    }
  } finally {
    await fh.close();
  }
  return { path, size, sha256: h.digest('hex') };
}

/** Two agents on their own tors of the private network, the file, and the bare sink onion on b's tor. */
export async function filesBenchSetup(): Promise<FilesBenchSetup> {
  const { tmp, cleanups, close } = await tempScope('mmogit-bench-files-');
  try {
    const { network, release } = await useNetwork();
    cleanups.push(release);
    const size = fileBytes();
    await mkdir(join(tmp, 'data'), { recursive: true });
    log(`writing a ${(size / MIB).toFixed(1)} MiB file`);
    const file = await writeFile(join(tmp, 'data', 'payload.bin'), size);
    const start = async (name: string) => {
      const agent = (await Agent.init({ configDir: join(tmp, name) })).agent;
      cleanups.push(() => agent.close());
      await agent.start({ network: network.dir, timeoutMs: 150_000 });
      return agent;
    };
    log('starting two agents');
    const [a, b] = await Promise.all([start('a'), start('b')]);
    const torA = a.net().tor;
    const torB = b.net().tor;

    // The bare reference: a sink behind its own onion on b's tor, reached through a's SOCKS port. It counts
    // and hashes what it gets and, once it has `size` bytes, writes the 32-byte digest back.
    const sink = net.createServer((s) => {
      s.on('error', () => {});
      const h = createHash('sha256');
      let got = 0;
      s.on('data', (d: Buffer) => {
        const take = d.subarray(0, Math.max(0, size - got));
        h.update(take);
        got += take.length;
        if (got === size && take.length > 0) s.write(h.digest());
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => sink.close(r)));
    const sinkKey = AgentKey.random();
    await publishOnion(torB, sinkKey, {
      targetPort: (sink.address() as net.AddressInfo).port,
      virtualPort: VPORT,
      timeoutMs: 60_000,
    });

    const bareStream = async (signal: AbortSignal): Promise<number> => {
      const sock = await retry(
        () =>
          socksConnect(
            { socksPort: torA.socksPort, socksHost: torA.socksHost, host: sinkKey.onion, port: VPORT },
            { timeoutMs: 30_000 },
          ),
        BARE_DIAL_RETRY,
      );
      try {
        const t0 = performance.now();
        const digest = new Promise<Buffer>((resolve, reject) => {
          const parts: Buffer[] = [];
          let n = 0;
          sock.on('data', (d: Buffer) => {
            parts.push(d);
            n += d.length;
            if (n >= 32) resolve(Buffer.concat(parts).subarray(0, 32));
          });
          sock.once('error', reject);
          sock.once('close', () => reject(new Error('bare sink closed before its digest')));
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
        // Read the file as the sender does (from disk), written with backpressure.
        const fh = await open(file.path, 'r');
        try {
          for await (const chunk of fh.createReadStream({ highWaterMark: 256 * 1024 })) {
            if (!sock.write(chunk as Buffer)) {
              await new Promise<void>((r, j) => {
                sock.once('drain', r);
                signal.addEventListener('abort', () => j(signal.reason), { once: true });
              });
            }
          }
        } finally {
          await fh.close();
        }
        const got = (await digest).toString('hex');
        if (got !== file.sha256) throw new Error(`bare sink digest ${got} ≠ ${file.sha256}`);
        return performance.now() - t0;
      } finally {
        sock.destroy();
      }
    };

    // Warm both paths: circuits and a's session to b.
    log('warming up');
    await a.send(b.address, 'warm-up', { timeoutMs: 90_000 });
    return { a, b, file, bareStream, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** One `sendFile` of the benchmark file: milliseconds until the receiver's ack (complete and verified). */
async function sendOnce(s: FilesBenchSetup, signal: AbortSignal): Promise<number> {
  let last = 0;
  const t0 = performance.now();
  const r = await s.a.sendFile(s.b.address, s.file.path, {
    signal,
    timeoutMs: 600_000,
    attempts: 1,
    onProgress: (e) => {
      const bytes = (e as { bytes?: number }).bytes ?? 0;
      if (bytes - last >= 10 * MIB) {
        last = bytes;
        log(`sent ${(bytes / MIB).toFixed(0)} / ${(s.file.size / MIB).toFixed(0)} MiB`);
      }
    },
  });
  const ms = performance.now() - t0;
  if (r.status !== 'delivered' || r.sha256 !== s.file.sha256) {
    throw new Error(`benchmark file was ${r.status} (${r.error?.code ?? 'no error'})`);
  }
  return ms;
}

/**
 * `rounds` file sends interleaved with as many bare streams of the same bytes; median MiB/s of each and the
 * ratio ours ÷ bare.
 */
export async function benchFileThroughput(
  options: { rounds?: number; setup?: FilesBenchSetup; signal?: AbortSignal } = {},
): Promise<BenchResult> {
  const rounds = options.rounds ?? 3;
  const signal = options.signal ?? AbortSignal.timeout(900_000);
  const s = options.setup ?? (await filesBenchSetup());
  try {
    const mibs = s.file.size / MIB;
    const ours: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const b = await s.bareStream(signal);
      bare.push(mibs / (b / 1000));
      log(`round ${i + 1}: bare ${(b / 1000).toFixed(1)} s (${round(bare.at(-1) as number, 2)} MiB/s)`);
      const o = await sendOnce(s, signal);
      ours.push(mibs / (o / 1000));
      log(`round ${i + 1}: file ${(o / 1000).toFixed(1)} s (${round(ours.at(-1) as number, 2)} MiB/s)`);
    }
    const value = median(ours);
    const anchor = median(bare);
    return {
      name: `files.throughput-${round(mibs, 1)}mib.tor`,
      value: round(value, 2),
      unit: 'MiB/s',
      anchor: round(anchor, 2),
      ratio: round(value / anchor, 3),
      target: FILE_THROUGHPUT_TARGET_RATIO,
      targetOn: 'ratio',
      targetOp: '>=',
      command: COMMAND,
      notes:
        `median of ${rounds} sendFile() of ${round(mibs, 1)} MiB until the receiver's signed ack (complete, ` +
        `sha256-verified, stored); anchor: a bare TCP stream of the same bytes through the same two tors ` +
        `(SOCKS → onion sink that hashes them and answers the digest), interleaved; ratio ours ÷ bare MiB/s ` +
        `(higher is better); runs ${ours.map((x) => round(x, 2)).join(', ')} vs ${bare.map((x) => round(x, 2)).join(', ')} MiB/s.`,
    };
  } finally {
    if (!options.setup) await s.close();
  }
}

/** File throughput vs a bare stream on one pair of agents. */
export const bench: BenchModule<FilesBenchSetup> = {
  name: 'files',
  needsTor: true,
  setup: filesBenchSetup,
  timeoutMs: 900_000,
  run: {
    benchFileThroughput: ({ setup, signal }) => benchFileThroughput({ setup, signal }),
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchFileThroughput({ rounds: Number(process.env.MMOGIT_BENCH_FILE_ROUNDS) || 3 });
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}
