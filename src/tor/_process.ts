// Small process helpers shared by the tor daemon and the private network: liveness checks that guard against
// pid reuse, bounded waits for exit, free loopback ports, and a log tail for error messages.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { sleep } from '../_async.js';

/** Is a process with this pid alive (signal 0 succeeds or is refused by permissions)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Is `pid` alive and still the process we started? On Linux its command line must contain `marker` (the
 * torrc path), so a pid reused by an unrelated process is never signalled. Elsewhere: liveness only.
 */
export async function isOurProcess(pid: number, marker: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    // A zombie has an empty cmdline: it is dead for our purposes.
    return cmdline.split('\0').includes(marker);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return process.platform !== 'linux' && isAlive(pid);
    return isAlive(pid);
  }
}

/** Polls until `pid` is gone or `ms` elapse; true when it is gone. */
export async function waitForPidExit(pid: number, marker: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await isOurProcess(pid, marker))) return true;
    await sleep(25);
  }
  return !(await isOurProcess(pid, marker));
}

/**
 * Stops a process we started: SIGTERM, then SIGKILL after `graceMs`. Resolves true if it was running.
 * Never signals a pid that no longer runs `marker`.
 */
export async function terminate(pid: number, marker: string, graceMs = 5_000): Promise<boolean> {
  if (!(await isOurProcess(pid, marker))) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  if (await waitForPidExit(pid, marker, graceMs)) return true;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone in between
  }
  await waitForPidExit(pid, marker, 2_000);
  return true;
}

/** A port on 127.0.0.1 that was free a moment ago (the kernel picks it; callers must still handle EADDRINUSE). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** The last `lines` lines of a log file ('' if it does not exist). */
export async function logTail(path: string, lines = 15): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
