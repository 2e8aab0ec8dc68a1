/**
 * Helpers every benchmark file shares: statistics and the private Tor network a benchmark runs on.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetwork, type TorNetworkInfo, testnetDown, testnetUp } from '../src/tor/testnet.js';

export type { BenchResult } from './_types.js';

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
