/**
 * Proof that a private Tor network works: the obfs4 bridge lines once each bridge's transport runs, and a
 * throwaway client that must reach `Bootstrapped 100%` (tor's bootstrap log lines, control-spec §5.5 phases).
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../_async.js';
import { abortReason } from '../errors.js';
import { testnetError } from './testnet-keys.js';
import type { TorNetworkInfo } from './testnet-network.js';
import { checkAlive, type ProcessRecord } from './testnet-processes.js';
import { probeLines } from './testnet-torrc.js';

/** Progress of `testnetUp`. */
export interface TestnetProgress {
  phase: 'keys' | 'launch' | 'bootstrap' | 'done';
  /** 0–100: the probe client's bootstrap progress in phase `bootstrap`. */
  progress: number;
  summary: string;
}

export const PROBE_DIR = 'probe';
/** How often a waiting step checks that the network's tors still run. */
const ALIVE_CHECK_MS = 500;
/** How long the probe client gets to exit after SIGTERM before SIGKILL. */
const PROBE_STOP_MS = 3_000;

/** A bridge as its line needs it. */
export interface BridgeNode {
  nickname: string;
  dataDir: string;
  ptPort: number;
  fingerprint: string;
}

/**
 * The `Bridge` line values of `bridges`, once obfs4proxy has written each one's
 * `Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=… iat-mode=0` (it does once it runs).
 */
export async function bridgeLinesOf(
  bridges: readonly BridgeNode[],
  records: readonly ProcessRecord[],
  signal: AbortSignal,
): Promise<string[]> {
  const what = 'testnet up: waiting for the obfs4 bridge line';
  const lines: string[] = [];
  for (const b of bridges) {
    const file = join(b.dataDir, 'pt_state', 'obfs4_bridgeline.txt');
    for (;;) {
      if (signal.aborted) throw abortReason(signal, what);
      const text = await readFile(file, 'utf8').catch(() => '');
      const m = /^Bridge obfs4 .*?(cert=\S+ iat-mode=\d)/m.exec(text);
      if (m) {
        lines.push(`obfs4 127.0.0.1:${b.ptPort} ${b.fingerprint} ${m[1]}`);
        break;
      }
      await checkAlive(records);
      await sleep(100, { signal }).catch(() => {
        throw abortReason(signal, what);
      });
    }
  }
  return lines;
}

/** Starts a throwaway client on the network in `dir` and waits until it reports `Bootstrapped 100%`. */
export async function probe(
  tools: { tor: string; empty: string },
  dir: string,
  info: TorNetworkInfo,
  records: readonly ProcessRecord[],
  signal: AbortSignal,
  progress: (p: TestnetProgress) => void,
): Promise<void> {
  const dataDir = join(dir, PROBE_DIR);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const torrc = join(dataDir, 'torrc');
  await writeFile(torrc, `${probeLines(info.clientTorrc, dataDir, process.pid).join('\n')}\n`);
  const child = spawn(tools.tor, ['--defaults-torrc', tools.empty, '-f', torrc], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setInterval(() => {
        checkAlive(records).catch(fail);
      }, ALIVE_CHECK_MS);
      const done = () => {
        clearInterval(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (e: unknown) => {
        done();
        reject(e);
      };
      const onAbort = () => fail(abortReason(signal, 'testnet up: waiting for a client to bootstrap'));
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      child.once('error', fail);
      child.once('exit', (code) =>
        fail(testnetError(`probe tor exited (${code}):\n${output.split('\n').slice(-15).join('\n')}`)),
      );
      child.stdout?.setEncoding('utf8');
      let pending = '';
      child.stdout?.on('data', (chunk: string) => {
        output = (output + chunk).slice(-20_000);
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const m = /Bootstrapped (\d+)% \(([^)]*)\): (.*)$/.exec(line);
          if (!m) continue;
          const pct = Number(m[1]);
          progress({ phase: 'bootstrap', progress: pct, summary: m[3] ?? '' });
          if (pct === 100) {
            done();
            resolvePromise();
          }
        }
      });
    });
  } finally {
    child.removeAllListeners('exit');
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(PROBE_STOP_MS)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
  }
}
