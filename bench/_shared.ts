/**
 * Helpers every benchmark file shares: statistics and the private Tor network a benchmark runs on.
 * @module
 */

import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RetryPolicy } from '../src/_async.js';
import { startTor, type TorHandle } from '../src/tor/daemon.js';
import { loadNetwork, type TorNetworkInfo, testnetDown, testnetUp } from '../src/tor/testnet.js';

export type { BenchResult } from './_types.js';

/** Retrying a bare SOCKS connect to an onion just published (its descriptor may need a moment after upload). */
export const BARE_DIAL_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 1_000, maxDelayMs: 1_000 };

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Rounds to `digits` decimals. */
export function round(x: number, digits = 1): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/** A private Tor network to run on, and how to let go of it. */
export interface NetworkLease {
  network: TorNetworkInfo;
  /** Stops and removes the network if it was brought up here; a no-op for a joined one. */
  release(): Promise<void>;
}

/**
 * Joins the private Tor network named by `MMOGIT_TEST_NETWORK` or `MMOGIT_TOR_NETWORK` (a testnet dir, e.g. the
 * runner's), else brings one up in a temp dir; call `release()` when done (for benches that keep a network
 * across several measurements).
 */
export async function useNetwork(): Promise<NetworkLease> {
  const dir = process.env.MMOGIT_TEST_NETWORK || process.env.MMOGIT_TOR_NETWORK;
  if (dir) return { network: await loadNetwork(dir), release: async () => {} };
  const own = await mkdtemp(join(tmpdir(), 'mmogit-bench-net-'));
  const release = async () => {
    try {
      await testnetDown({ dir: join(own, 'net') });
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  };
  try {
    return {
      network: await testnetUp({ dir: join(own, 'net'), ownerPid: process.pid, timeoutMs: 180_000 }),
      release,
    };
  } catch (e) {
    await release().catch(() => {});
    throw e;
  }
}

/** Runs `fn` on a private Tor network: the one given, else the one {@link useNetwork} finds or brings up. */
export async function withNetwork<T>(
  given: TorNetworkInfo | undefined,
  fn: (network: TorNetworkInfo) => Promise<T>,
): Promise<T> {
  if (given) return fn(given);
  const { network, release } = await useNetwork();
  try {
    return await fn(network);
  } finally {
    await release();
  }
}

/** A fresh temp dir and the undo steps of what a setup builds in it; the dir itself is the first step. */
export interface TempScope {
  tmp: string;
  /** Undo steps, run last-in first-out by `close()`; push what you build on top. */
  cleanups: (() => Promise<unknown>)[];
  /** Runs every cleanup (errors ignored), the temp dir's removal last. */
  close(): Promise<void>;
}

/** Makes a temp dir named `prefix…` with its cleanup list (a benchmark setup's scaffolding). */
export async function tempScope(prefix: string): Promise<TempScope> {
  const tmp = await mkdtemp(join(tmpdir(), prefix));
  const cleanups: (() => Promise<unknown>)[] = [async () => rm(tmp, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  return { tmp, cleanups, close };
}

/** Two agent tors on a private network, in a temp dir (their data dirs `tor-a`, `tor-b`), with the undo steps. */
export interface TwoTors extends TempScope {
  network: TorNetworkInfo;
  torA: TorHandle;
  torB: TorHandle;
}

/** Joins or brings up the network ({@link useNetwork}) and starts two agent tors on it in a fresh temp dir. */
export async function twoTors(prefix: string): Promise<TwoTors> {
  const { tmp, cleanups, close } = await tempScope(prefix);
  try {
    const { network, release } = await useNetwork();
    cleanups.push(release);
    const tors: TorHandle[] = await Promise.all(
      ['tor-a', 'tor-b'].map((name) =>
        startTor({ dataDir: join(tmp, name), network, restart: false, timeoutMs: 120_000 }),
      ),
    );
    cleanups.push(() => Promise.all(tors.map((t) => t.stop())));
    const [torA, torB] = tors as [TorHandle, TorHandle];
    return { tmp, network, torA, torB, cleanups, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** `rounds` round trips (ms) of `bytes` on `socket` to an echo (one write, wait until as many bytes are back). */
export async function echoTimes(socket: net.Socket, bytes: number, rounds: number): Promise<number[]> {
  const payload = Buffer.alloc(bytes, 0x61);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      const onData = (d: Buffer) => {
        got += d.length;
        if (got >= bytes) {
          socket.off('data', onData);
          socket.off('error', reject);
          resolve();
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(payload);
    });
    out.push(performance.now() - t0);
  }
  return out;
}
