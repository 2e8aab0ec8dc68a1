/**
 * The processes of a private Tor network: launched detached, recorded in `processes.json` (pid, role, torrc)
 * so that `testnetDown` stops exactly those, and checked for an early exit while the network comes up.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isOurProcess, logTail } from './_process.js';
import { testnetError } from './testnet-keys.js';

export const PROCESSES_FILE = 'processes.json';

/** One tor of the network as `processes.json` records it. */
export interface ProcessRecord {
  role: 'authority' | 'relay' | 'bridge';
  nickname: string;
  pid: number;
  /** Its torrc path: also the marker that tells our tor from a process that reused its pid. */
  torrc: string;
}

function isRecord(p: unknown): p is ProcessRecord {
  if (typeof p !== 'object' || p === null) return false;
  const r = p as Record<string, unknown>;
  return Number.isInteger(r.pid) && typeof r.torrc === 'string';
}

/** The records of `<dir>/processes.json` ([] when there is none). */
export async function readProcesses(dir: string): Promise<ProcessRecord[]> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(dir, PROCESSES_FILE), 'utf8'));
    return Array.isArray(parsed) ? parsed.filter(isRecord) : [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw testnetError(`cannot read ${join(dir, PROCESSES_FILE)}`, undefined, e);
  }
}

/** Rewrites `<dir>/processes.json`: after each launch, so a failed start-up can stop everything it started. */
export async function writeProcesses(dir: string, records: readonly ProcessRecord[]): Promise<void> {
  await writeFile(join(dir, PROCESSES_FILE), `${JSON.stringify(records, null, 2)}\n`);
}

/**
 * Starts a detached tor on `torrc` with stdout and stderr appended to `stdoutFile`, in `env` (the TCP_NODELAY
 * shim's `LD_PRELOAD`, nodelay.ts).
 */
export function launch(
  tor: string,
  empty: string,
  torrc: string,
  stdoutFile: string,
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const fd = openSync(stdoutFile, 'a');
  try {
    // Detached and unref'd: the network outlives `mmogit testnet up`; processes.json owns it.
    const child = spawn(tor, ['--defaults-torrc', empty, '-f', torrc], {
      detached: true,
      env,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Throws `ERR_TESTNET` with the tail of its log when one of the recorded tors is no longer running. */
export async function checkAlive(records: readonly ProcessRecord[]): Promise<void> {
  for (const r of records) {
    if (!(await isOurProcess(r.pid, r.torrc))) {
      const log = await logTail(join(r.torrc, '..', 'notice.log'));
      throw testnetError(`tor for ${r.nickname} exited during start-up:\n${log}`, { nickname: r.nickname });
    }
  }
}
