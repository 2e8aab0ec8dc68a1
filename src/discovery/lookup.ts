/**
 * Looking one agent up: every copy of its advertisement record the DHT returns is verified, and the newest valid
 * one wins (not kad-dht's single pick, so a replayed older copy cannot).
 * @module
 */
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht';
import type { AbortOptions } from '../_async.js';
import { abortReason, type MmogitError, withTimeout } from '../errors.js';
import { compareAdvertisements, type VerifiedAdvertisement } from './advertisement.js';
import { advertRecordKey, verifyAdvertRecord } from './dht.js';
import type { DiscoveryNode } from './discovery-node.js';

/** Default time budget of {@link Discovery.lookup}. */
export const LOOKUP_TIMEOUT_MS = 20_000;
/** What lookup and discover need of a {@link Discovery}: its node and DHT, our key, its clock and log. */
export interface FindContext {
  node: DiscoveryNode;
  dht: KadDHT;
  /** Our own public key (never yielded by discover). */
  selfKey: Uint8Array;
  now: () => number;
  log: (line: string) => void;
}

export interface LookupOptions extends AbortOptions {
  /**
   * Stop this long after the first valid copy arrived (faster; may miss a newer copy held by farther
   * peers). By default the whole DHT query runs and the newest copy of all wins.
   */
  settleMs?: number;
}

/**
 * Fetches every copy of an agent's record the DHT returns, verifies each and returns the newest valid one
 * (not kad-dht's single pick: a replayed older copy cannot win here), or null.
 */
export async function lookupAdvert(
  ctx: FindContext,
  publicKey: Uint8Array,
  options: LookupOptions = {},
): Promise<VerifiedAdvertisement | null> {
  const settle = new AbortController();
  const signal = AbortSignal.any([
    withTimeout(options.signal, options.timeoutMs ?? LOOKUP_TIMEOUT_MS, 'lookup'),
    settle.signal,
  ]);
  const key = advertRecordKey(publicKey);
  let best: VerifiedAdvertisement | null = null;
  let settleTimer: ReturnType<typeof setTimeout> | undefined;
  const consider = (value: Uint8Array): void => {
    try {
      const v = verifyAdvertRecord(key, value, { now: ctx.now() });
      if (best === null || compareAdvertisements(v, best) > 0) best = v;
      if (options.settleMs !== undefined && settleTimer === undefined) {
        settleTimer = setTimeout(() => settle.abort(), options.settleMs);
      }
    } catch (e) {
      ctx.log(`dropped record: ${(e as MmogitError).details?.reason ?? (e as Error).message}`);
    }
  };
  try {
    for await (const e of ctx.dht.get(key, { signal }) as AsyncIterable<QueryEvent>) {
      if (e.name === 'VALUE') consider(e.value);
      else if (e.name === 'PEER_RESPONSE' && e.record != null) consider(e.record.value);
    }
  } catch (e) {
    // kad-dht throws after a failed correction of a stale peer or when nothing is found; what we collected
    // stands. Only the caller's own abort is an error.
    if (options.signal?.aborted) throw abortReason(options.signal, 'lookup');
    if (!signal.aborted) ctx.log(`lookup ended: ${(e as Error).message}`);
  } finally {
    clearTimeout(settleTimer);
  }
  if (options.signal?.aborted) throw abortReason(options.signal, 'lookup');
  return best;
}
