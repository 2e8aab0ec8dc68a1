// Shared by the kill -9 tests: run counts from the environment, a seeded random source (the seed is printed so a
// run can be replayed), the real daemon started and SIGKILLed, and `git fsck --strict` on a memory repository.
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';

const run = promisify(execFile);

/** Runs per scenario: env `MMOGIT_KILL_RUNS` (the long run uses 100), else `fallback`. */
export function killRuns(fallback: number): number {
  const n = Number(process.env.MMOGIT_KILL_RUNS);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

/**
 * A small seeded generator (mulberry32), seeded from `MMOGIT_KILL_SEED` or at random; the seed is printed so a
 * failing run can be replayed with the same kill instants.
 */
export function seededRandom(name: string): () => number {
  const fromEnv = Number(process.env.MMOGIT_KILL_SEED);
  let s = Number.isSafeInteger(fromEnv) ? fromEnv : (Math.random() * 2 ** 31) | 0;
  process.stderr.write(`[kill] ${name}: seed ${s}\n`);
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `git fsck --strict --full` on `<home>/memory`: its output (dangling objects, which a write cut between its objects and its ref move leaves, are not reported: they are harmless), rejecting on any error. */
export async function fsckStrict(home: string): Promise<string> {
  const { stdout, stderr } = await run(
    'git',
    ['fsck', '--strict', '--full', '--no-dangling', '--no-progress'],
    {
      cwd: join(home, 'memory'),
      timeout: 120_000,
    },
  );
  return `${stdout}${stderr}`.trim();
}

/** Starts the real daemon for `home` on the private network; resolves with its pid once its onion is up. */
export async function startDaemon(home: string, network: string): Promise<number> {
  const r = await runCli(['tor', 'start', '--network', network, '--json', '--config-dir', home], {
    timeoutMs: 150_000,
  });
  if (r.exitCode !== 0) throw new Error(`tor start failed (${r.exitCode}): ${r.stderr}`);
  return r.json<{ pid: number }>().pid;
}

/** The daemon's pid as its state file names it. */
export async function daemonPid(home: string): Promise<number> {
  return (JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { pid: number }).pid;
}

/** SIGKILLs `pid` and resolves once it is gone (a zombie counts as gone: it holds nothing). */
export async function kill9(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 200; i++) {
    try {
      const { stdout } = await run('ps', ['-o', 'stat=', '-p', String(pid)]);
      if (stdout.includes('Z')) return;
    } catch {
      return; // ps exits 1: no such process
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`process ${pid} still alive 5 s after SIGKILL`);
}

/** A running `mmogit …args` child: its exit, and its pid to kill. */
export function spawnCli(args: string[]): {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
} {
  const child = spawn(process.execPath, [MMOGIT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })),
  );
  return { pid: child.pid as number, exited };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Objects `git fsck` finds unreachable in `<home>/memory`: what writes cut before their ref moved left. */
export async function danglingObjects(home: string): Promise<number> {
  const { stdout } = await run('git', ['fsck', '--full', '--no-progress'], {
    cwd: join(home, 'memory'),
    timeout: 120_000,
  });
  return stdout.split('\n').filter((l) => l.startsWith('dangling ')).length;
}
