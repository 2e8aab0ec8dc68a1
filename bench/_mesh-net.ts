/**
 * What the mesh benchmarks run on, all on 127.0.0.1: relays as separate `mmogit mesh relay --no-tor` processes,
 * a chain of socat forwarders of the same length (the anchor), and a source/echo server in its own process.
 * Every process started here is killed by `close()` (and by SIGKILL on the runner's exit); every spawn is
 * bounded in time and takes an AbortSignal (an abort kills what it was starting).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import type { RelayInfo } from '../src/mesh/circuit.js';
import { parseRelaySpec } from '../src/mesh/descriptor.js';
import { exitPolicyFrom } from '../src/mesh/exit-policy.js';
import { packageRoot } from './cli.js';

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of started) p.kill('SIGKILL');
});

/** SIGKILLs every process started here that is still running (a runner's SIGINT/SIGTERM handler). */
export function killStarted(): void {
  for (const p of started) p.kill('SIGKILL');
  started.clear();
}

/** How long a spawned process may take to print its first line. */
const SPAWN_TIMEOUT_MS = 30_000;

/** Spawns a process and resolves with its first stdout line (bounded by `timeoutMs` and `signal`). */
function spawnLine(
  cmd: string,
  args: string[],
  signal?: AbortSignal,
  timeoutMs = SPAWN_TIMEOUT_MS,
): Promise<{ proc: ChildProcess; line: string }> {
  signal?.throwIfAborted();
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  started.add(proc);
  proc.on('exit', () => started.delete(proc));
  return new Promise((resolve, reject) => {
    let out = '';
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (e: Error) => {
      done();
      proc.kill('SIGKILL');
      reject(e);
    };
    const onAbort = () => fail(new Error(`${cmd}: start aborted (${String(signal?.reason)})`));
    const timer = setTimeout(
      () => fail(new Error(`${cmd} ${args.join(' ')}: no output in ${timeoutMs} ms`)),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        done();
        resolve({ proc, line: out.slice(0, nl) });
      }
    });
    proc.once('exit', (code) => fail(new Error(`${cmd} exited ${code} before printing`)));
  });
}

/** A free TCP port on 127.0.0.1 (closed again: a forwarder binds it right after). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A server process on 127.0.0.1: `source` sends `bytes` to each client then closes (0: forever, as fast as
 * the reader takes it, or at `rateBytesPerSec`); `echo` echoes; `pattern` sends `bytes` of a pseudo-random
 * stream (xorshift32, so a lost, repeated or reordered chunk changes the hash) and reports its sha256.
 */
export async function serverProcess(
  mode: 'source' | 'echo',
  bytes = 0,
  rateBytesPerSec = 0,
  signal?: AbortSignal,
): Promise<{ port: number; proc: ChildProcess }> {
  const script = `
    const net = require('net');
    const chunk = Buffer.alloc(65536, 7);
    const s = net.createServer((c) => {
      c.setNoDelay(true);
      c.on('error', () => {});
      if (${mode === 'echo'}) { c.pipe(c); return; }
      let left = ${bytes} || Infinity;
      if (${rateBytesPerSec} > 0) {
        const per = Math.max(1, Math.round(${rateBytesPerSec} / 200));
        const t = setInterval(() => { if (!c.destroyed && c.writableLength < 4 * per) c.write(Buffer.alloc(per, 9)); }, 5);
        c.on('close', () => clearInterval(t));
        return;
      }
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return c.once('drain', pump);
        }
        c.end();
      };
      pump();
    });
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const { proc, line } = await spawnLine(process.execPath, ['-e', script], signal);
  return { port: Number(line), proc };
}

/** A `pattern` server (see {@link serverProcess}): `bytes` per client, its sha256 known before any is sent. */
export async function patternServer(
  bytes: number,
  signal?: AbortSignal,
): Promise<{ port: number; sha256: string; proc: ChildProcess }> {
  const script = `
    const net = require('net');
    const crypto = require('crypto');
    const body = Buffer.alloc(${bytes});
    let x = 0x9e3779b9;
    for (let i = 0; i + 4 <= body.length; i += 4) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      body.writeUInt32LE(x, i);
    }
    const sha = crypto.createHash('sha256').update(body).digest('hex');
    const s = net.createServer((c) => { c.on('error', () => {}); c.end(body); });
    s.listen(0, '127.0.0.1', () => console.log(s.address().port + ' ' + sha));`;
  const { proc, line } = await spawnLine(process.execPath, ['-e', script], signal);
  const [port, sha256] = line.split(' ');
  return { port: Number(port), sha256: sha256 as string, proc };
}

/** A chain of `hops` socat forwarders ending at `target`; returns the entry port. */
export async function socatChain(hops: number, target: number): Promise<{ port: number; close: () => void }> {
  const procs: ChildProcess[] = [];
  let next = target;
  for (let i = 0; i < hops; i++) {
    const port = await freePort();
    const p = spawn(
      'socat',
      [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,nodelay`, `TCP:127.0.0.1:${next},nodelay`],
      {
        stdio: 'ignore',
      },
    );
    started.add(p);
    procs.push(p);
    next = port;
  }
  // socat binds at once; wait until the entry accepts
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(next, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port: next,
    close: () => {
      for (const p of procs) p.kill('SIGKILL');
    },
  };
}

/** One relay process and how to reach it. */
export interface RelayProcess {
  info: RelayInfo;
  proc: ChildProcess;
  dir: string;
  /** OS pid (for /proc CPU readings and kill -9). */
  pid: number;
}

/** Relays as separate processes on loopback, each with its own identity. */
export class RelayFarm {
  readonly relays: RelayProcess[] = [];
  #root = '';
  readonly #exitTo: string[];
  readonly #interval: number | undefined;

  constructor(exitTo: string[], intervalMs?: number) {
    this.#exitTo = exitTo;
    this.#interval = intervalMs;
  }

  /** Starts `n` relays, four at a time (16 node processes starting at once on 2 loaded cores ran past the bound). */
  async start(n: number, signal?: AbortSignal): Promise<this> {
    this.#root = await mkdtemp(join(tmpdir(), 'mmogit-bench-mesh-'));
    for (let i = 0; i < n; i += 4) {
      await Promise.all(
        Array.from({ length: Math.min(4, n - i) }, async (_, j) => {
          const dir = join(this.#root, `relay${i + j}`);
          const { agent } = await Agent.init({ configDir: dir });
          await agent.close();
          this.relays.push(await this.#spawn(dir, signal));
        }),
      );
    }
    return this;
  }

  async #spawn(dir: string, signal?: AbortSignal): Promise<RelayProcess> {
    const main = join(packageRoot(), 'dist', 'cli', 'main.js');
    const args = [
      main,
      'mesh',
      'relay',
      '--no-tor',
      '--listen',
      '127.0.0.1:0',
      '--json',
      '--config-dir',
      dir,
    ];
    for (const e of this.#exitTo) args.push('--exit-to', e);
    if (this.#interval !== undefined) args.push('--interval', String(this.#interval));
    const { proc, line } = await spawnLine(process.execPath, args, signal);
    const out = JSON.parse(line) as { relay: string };
    const info = parseRelaySpec(out.relay);
    info.exitPolicy = exitPolicyFrom(this.#exitTo);
    return { info, proc, dir, pid: proc.pid as number };
  }

  /** Kills a relay with SIGKILL and starts it again (same key, new port); resolves with the new one. */
  async restart(r: RelayProcess, signal?: AbortSignal): Promise<RelayProcess> {
    r.proc.kill('SIGKILL');
    const fresh = await this.#spawn(r.dir, signal);
    this.relays[this.relays.indexOf(r)] = fresh;
    return fresh;
  }

  byOnion(onion: string): RelayProcess | undefined {
    return this.relays.find((r) => r.info.onion === onion);
  }

  /** SIGKILLs every relay, waits (bounded) until they are gone, then removes their directories. */
  async close(): Promise<void> {
    const gone = this.relays.map(
      (r) =>
        new Promise<void>((resolve) => {
          if (r.proc.exitCode !== null || r.proc.signalCode !== null) return resolve();
          r.proc.once('exit', () => resolve());
          r.proc.kill('SIGKILL');
        }),
    );
    await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 5_000))]);
    if (this.#root)
      await rm(this.#root, { recursive: true, force: true, maxRetries: 5 }).catch(() => {
        // a directory left in the OS temp dir is not worth failing a measurement for
      });
  }
}

/**
 * CPU time (ms) a process has run, from /proc/<pid>/schedstat (Linux: its first field is the time on a CPU in
 * nanoseconds, see the kernel's Documentation/scheduler/sched-stats.rst), summed over its threads; falls back to
 * utime + stime of /proc/<pid>/stat (10 ms ticks) where schedstat is missing.
 */
export async function processCpuMs(pid: number): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises');
  try {
    const tids = await readdir(`/proc/${pid}/task`);
    let ns = 0;
    for (const t of tids) {
      const st = await readFile(`/proc/${pid}/task/${t}/schedstat`, 'utf8').catch(() => '0');
      ns += Number(st.split(' ')[0]);
    }
    return ns / 1e6;
  } catch {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (proc(5) fields 14, 15)
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  }
}
