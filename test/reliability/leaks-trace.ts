// Runs the real `mmogit` CLI under `strace -f` and reads back every connect()/sendto()/sendmsg() its processes
// made: what the leaks test (leaks.tor.test.ts) judges. Processes that exec another program (tor, git) are
// set apart by their execve, so tor's own relay traffic is not counted as ours.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { MMOGIT_BIN } from '../helpers/cli.js';

/** Why strace cannot trace here (not installed, ptrace not allowed), or undefined when it can. */
export function straceUnavailable(): string | undefined {
  const r = spawnSync('strace', ['-f', '-q', '-e', 'trace=none', 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.error) return `strace is not installed (${r.error.message}): apt-get install strace`;
  if (r.status !== 0) return `strace cannot trace here: ${r.stderr.trim().slice(0, 200)}`;
  return undefined;
}

export interface TracedRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  traceFile: string;
  /** Resolves when strace itself ends (for `tor start`: when the daemon it spawned has exited). */
  traceDone: Promise<void>;
}

/**
 * Runs `mmogit …args` under strace; resolves when the CLI process has exited (its children, the daemon and
 * tor, may go on being traced). stdout/stderr go to files: a daemon that inherits them must not hold us up.
 */
export async function tracedCli(
  dir: string,
  name: string,
  args: string[],
  timeoutMs = 150_000,
): Promise<TracedRun> {
  const traceFile = join(dir, `${name}.strace`);
  const out = join(dir, `${name}.stdout`);
  const err = join(dir, `${name}.stderr`);
  const fds = [openSync(out, 'w'), openSync(err, 'w')] as const;
  const child = spawn(
    'strace',
    [
      '-f',
      '-q',
      '-s',
      '0', // no payload bytes in the trace: it would hold what we send tor (the onion's key, ADD_ONION)
      '-e',
      'trace=connect,sendto,sendmsg,execve',
      '-e',
      'signal=none',
      '-o',
      traceFile,
      process.execPath,
      MMOGIT_BIN,
      ...args,
    ],
    { stdio: ['ignore', fds[0], fds[1]], env: process.env },
  );
  closeSync(fds[0]);
  closeSync(fds[1]);
  const traceDone = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const straceEnded = child.exitCode !== null;
    // The CLI's exit line in the trace, or, once strace has ended, strace's own status: it exits with its
    // command's (a trace whose first line is not the CLI's pid made a finished `init` look unfinished).
    const exit = cliExit(traceFile) ?? (straceEnded ? (child.exitCode ?? undefined) : undefined);
    if (exit !== undefined) {
      return {
        exitCode: exit,
        stdout: readFileSync(out, 'utf8'),
        stderr: readFileSync(err, 'utf8'),
        traceFile,
        traceDone,
      };
    }
    if (straceEnded || Date.now() > deadline) {
      if (child.exitCode === null) child.kill('SIGKILL');
      throw new Error(`mmogit ${args.join(' ')} did not finish under strace\n${readFileSync(err, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function lines(traceFile: string): string[] {
  try {
    return readFileSync(traceFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The first traced pid is the CLI's (strace starts it); its `+++ exited with N +++` is its exit. */
function cliExit(traceFile: string): number | undefined {
  const all = lines(traceFile);
  const first = all[0]?.match(/^(\d+) /)?.[1];
  if (!first) return undefined;
  // strace pads the pid column (`2637  +++ exited…` for a 4-digit pid, one space for a 5-digit one)
  const re = new RegExp(`^${first} +\\+\\+\\+ (exited with (\\d+)|killed by (\\w+))`);
  for (const l of all) {
    const m = re.exec(l);
    if (m) return m[2] !== undefined ? Number(m[2]) : -1;
  }
  return undefined;
}

export interface NetCall {
  pid: number;
  call: 'connect' | 'sendto' | 'sendmsg';
  family: string;
  /** `path` for AF_UNIX, `host:port` for AF_INET/AF_INET6, the raw address otherwise. */
  to: string;
  line: string;
}

/** Every connect/sendto/sendmsg with an address, by a process still running node (not tor, not git). */
export function netCalls(traceFile: string): { calls: NetCall[]; programs: string[] } {
  const foreign = new Set<number>();
  const programs = new Set<string>();
  const calls: NetCall[] = [];
  for (const line of lines(traceFile)) {
    const m = /^(\d+) +(?:<\.\.\. )?(connect|sendto|sendmsg|execve)\b(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const call = m[2] as string;
    const rest = m[3] as string;
    if (call === 'execve') {
      const prog = /^\("([^"]+)"/.exec(rest)?.[1];
      if (prog && / = 0$/.test(rest) && basename(prog) !== basename(process.execPath)) {
        foreign.add(pid);
        programs.add(basename(prog));
      }
      continue;
    }
    if (foreign.has(pid)) continue;
    const family = /sa_family=(AF_\w+)/.exec(rest)?.[1];
    if (!family) continue; // a connected socket's send: no address, goes where its connect went
    let to = family;
    if (family === 'AF_UNIX') to = /sun_path=(@?"[^"]*")/.exec(rest)?.[1]?.replace(/"/g, '') ?? '(unnamed)';
    if (family === 'AF_INET' || family === 'AF_INET6') {
      const port = /htons\((\d+)\)/.exec(rest)?.[1];
      const host = /inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"/.exec(rest);
      to = `${host?.[1] ?? host?.[2] ?? '?'}:${port ?? '?'}`;
    }
    calls.push({ pid, call: call as NetCall['call'], family, to, line });
  }
  return { calls, programs: [...programs] };
}
