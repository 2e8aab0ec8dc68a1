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

/**
 * Runs `fn` on a private Tor network: the one given, else the one named by `MMOGIT_TEST_NETWORK` or
 * `MMOGIT_TOR_NETWORK` (a testnet dir, e.g. the runner's), else one brought up here and down again afterwards.
 */
export async function withNetwork<T>(
  given: TorNetworkInfo | undefined,
  fn: (network: TorNetworkInfo) => Promise<T>,
): Promise<T> {
  if (given) return fn(given);
  const dir = process.env.MMOGIT_TEST_NETWORK || process.env.MMOGIT_TOR_NETWORK;
  if (dir) return fn(await loadNetwork(dir));
  const own = await mkdtemp(join(tmpdir(), 'mmogit-bench-net-'));
  try {
    return await fn(await testnetUp({ dir: join(own, 'net'), ownerPid: process.pid, timeoutMs: 180_000 }));
  } finally {
    await testnetDown({ dir: join(own, 'net') });
    await rm(own, { recursive: true, force: true });
  }
}
