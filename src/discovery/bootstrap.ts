/**
 * Joining the DHT: dial bootstrap agents with retries. `@libp2p/bootstrap` refuses `/onion3/…/p2p/…`
 * multiaddrs, and a fresh onion service is unreachable for a second or two after publication (tor answers
 * SOCKS reply 4, "host unreachable", until the descriptor is on the HSDirs; a retry about 1 s later succeeds),
 * so we dial ourselves and retry.
 * @module
 */
import '../_polyfill.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Libp2p } from '@libp2p/interface';
import type { SingleKadDHT } from '@libp2p/kad-dht';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { type AbortOptions, type RetryPolicy, raceAbort, retry, sleep } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import { SELF_LOOKUP_TIMEOUT_MS, selfLookup } from './self-lookup.js';

/**
 * The one retry policy of a bootstrap dial, per address: 6 tries, full-jitter waits capped at 8 s. Callers
 * that want to keep trying longer (an agent joining in the background) pass a larger policy and
 * `timeoutMs` to one {@link bootstrapDialer} call rather than calling it again in a loop, so the bound
 * stays one number.
 */
export const BOOTSTRAP_RETRY: RetryPolicy = Object.freeze({
  attempts: 6,
  baseDelayMs: 1_000,
  maxDelayMs: 8_000,
});
/** One dial attempt's budget (a cold onion circuit takes several seconds). */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 30_000;
/** How long to wait for the first DHT peer after connecting, before the self-lookup. */
export const ROUTING_TABLE_WAIT_MS = 10_000;
/** Whole-bootstrap budget. */
export const BOOTSTRAP_TIMEOUT_MS = 120_000;
/** The self-lookup's own budget, inside the whole one (it is best effort: see self-lookup.ts). */
export const SELF_QUERY_TIMEOUT_MS = SELF_LOOKUP_TIMEOUT_MS;

/** Progress of {@link bootstrapDialer}, one event per step. */
export type BootstrapProgress =
  | { type: 'dial'; addr: string; attempt: number }
  | { type: 'retry'; addr: string; attempt: number; delayMs: number; error: string }
  | { type: 'connected'; addr: string; attempt: number }
  | { type: 'failed'; addr: string; error: string };

export interface BootstrapOptions extends AbortOptions {
  /** How each address is retried (fields default to {@link BOOTSTRAP_RETRY}'s). */
  retry?: Partial<RetryPolicy>;
  /** One dial's budget (default {@link BOOTSTRAP_DIAL_TIMEOUT_MS}). */
  dialTimeoutMs?: number;
  /** The whole bootstrap's budget: every address's tries and the self-lookup (default {@link BOOTSTRAP_TIMEOUT_MS}). */
  timeoutMs?: number;
  onProgress?: (event: BootstrapProgress) => void;
  /** After connecting, run a self-lookup in `node.services.dht` to fill the routing table (default true). */
  selfQuery?: boolean;
}

/**
 * The self-lookup right after joining; kad-dht's own self-query may have run before any peer was known and the
 * next one is minutes away.
 */
async function selfQuery(node: Libp2p, signal: AbortSignal): Promise<void> {
  // The routing table gains a peer only after identify confirmed it speaks our DHT protocol; a query run
  // before that finds nobody (allowQueryWithZeroPeers).
  const table = (node.services as { dht?: Partial<SingleKadDHT> }).dht?.routingTable;
  const deadline = Date.now() + ROUTING_TABLE_WAIT_MS;
  while (table !== undefined && table.size === 0 && Date.now() < deadline && !signal.aborted) {
    await sleep(25, { signal }).catch(() => {});
  }
  // best effort: the periodic self-query and later lookups fill the table too
  await selfLookup(node, { signal, timeoutMs: SELF_QUERY_TIMEOUT_MS }).catch(() => {});
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Dials every bootstrap multiaddr (in parallel, each retried under one policy, {@link BOOTSTRAP_RETRY} by default). Addresses of
 * this node itself are skipped. Never throws for unreachable peers: they are listed in `failed`.
 *
 * @example
 * const { connected } = await bootstrapDialer(node, ['/onion3/…:4001/p2p/12D3Koo…']);
 * @throws MmogitError `ERR_INVALID_MULTIADDR` for an unparsable address, `ERR_ABORTED` when the caller aborts.
 */
export async function bootstrapDialer(
  node: Libp2p,
  multiaddrs: string[],
  options: BootstrapOptions = {},
): Promise<{ connected: string[]; failed: string[] }> {
  const parsed: Array<{ addr: string; ma: Multiaddr }> = [];
  for (const addr of new Set(multiaddrs)) {
    let ma: Multiaddr;
    try {
      ma = multiaddr(addr);
    } catch (e) {
      throw new MmogitError('ERR_INVALID_MULTIADDR', `invalid bootstrap multiaddr "${addr}"`, { cause: e });
    }
    if (ma.getComponents().some((c) => c.name === 'p2p' && c.value === node.peerId.toString())) continue;
    parsed.push({ addr, ma });
  }
  const policy: RetryPolicy = { ...BOOTSTRAP_RETRY, ...options.retry };
  const signal = withTimeout(options.signal, options.timeoutMs ?? BOOTSTRAP_TIMEOUT_MS, 'bootstrap');
  const dialTimeoutMs = options.dialTimeoutMs ?? BOOTSTRAP_DIAL_TIMEOUT_MS;
  const connected: string[] = [];
  const failed: string[] = [];
  await Promise.all(
    parsed.map(async ({ addr, ma }) => {
      try {
        const attempt = await retry(
          async (n, tries) => {
            options.onProgress?.({ type: 'dial', addr, attempt: n });
            const dialSignal = withTimeout(tries, dialTimeoutMs, `bootstrap dial ${addr}`);
            // raced as well: a dial that joins one already queued in libp2p may outlive its own signal
            await raceAbort(node.dial(ma, { signal: dialSignal }), dialSignal, `bootstrap dial ${addr}`);
            return n;
          },
          policy,
          {
            signal,
            what: `bootstrap dial ${addr}`,
            onRetry: ({ attempt, delayMs, error }) =>
              options.onProgress?.({ type: 'retry', addr, attempt, delayMs, error: errorText(error) }),
          },
        );
        connected.push(addr);
        options.onProgress?.({ type: 'connected', addr, attempt });
      } catch (e) {
        failed.push(addr);
        options.onProgress?.({ type: 'failed', addr, error: errorText(e) });
      }
    }),
  );
  if (options.signal?.aborted) throw abortReason(options.signal, 'bootstrap');
  if (connected.length > 0 && options.selfQuery !== false) {
    // Bounded by our clock, not only by the signal handed to kad-dht: a query waiting on a peer's stream that
    // does not end on abort must not hold up the join (the lookup is best effort).
    const bound = withTimeout(signal, ROUTING_TABLE_WAIT_MS + SELF_QUERY_TIMEOUT_MS, 'bootstrap self-lookup');
    await raceAbort(selfQuery(node, signal), bound, 'bootstrap self-lookup').catch(() => {});
  }
  return { connected, failed };
}

/**
 * Bootstrap multiaddrs listed by a private network's `network.json` (written by `src/tor/testnet.ts`).
 * Reads `bootstrapPeers: string[]` (what testnet.ts writes); also `bootstrap: string[] | [{ multiaddr }]` and
 * agents flagged `bootstrap: true`.
 *
 * @throws MmogitError `ERR_NETWORK_CONFIG` when the file is missing or lists no bootstrap address.
 */
export async function bootstrapAddrsFromNetwork(dir: string): Promise<string[]> {
  const file = join(dir, 'network.json');
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `cannot read ${file}`, { cause: e, details: { file } });
  }
  const out: string[] = [];
  const take = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'object' && v !== null) {
      const o = v as { multiaddr?: unknown; multiaddrs?: unknown };
      if (typeof o.multiaddr === 'string') out.push(o.multiaddr);
      if (Array.isArray(o.multiaddrs)) o.multiaddrs.forEach(take);
    }
  };
  const d = (doc ?? {}) as { bootstrap?: unknown; bootstrapPeers?: unknown; agents?: unknown };
  if (Array.isArray(d.bootstrapPeers)) d.bootstrapPeers.forEach(take);
  if (Array.isArray(d.bootstrap)) d.bootstrap.forEach(take);
  if (Array.isArray(d.agents)) {
    for (const a of d.agents) if ((a as { bootstrap?: unknown })?.bootstrap === true) take(a);
  }
  if (out.length === 0) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${file} lists no bootstrap agents`, { details: { file } });
  }
  return [...new Set(out)];
}
