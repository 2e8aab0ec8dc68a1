/**
 * Joining the DHT: dial bootstrap agents with retries. `@libp2p/bootstrap` refuses `/onion3/…/p2p/…`
 * multiaddrs (libp2p-over-tor.md "Pitfalls"), and a fresh onion service is unreachable for a second or two
 * after publication (tor-testnet.md: SOCKS reply 4, retry ~1 s later), so we dial ourselves and retry.
 * @module
 */
import '../_polyfill.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Libp2p } from '@libp2p/interface';
import type { KadDHT, SingleKadDHT } from '@libp2p/kad-dht';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { abortReason, MmogitError, withTimeout } from '../errors.js';

/** Attempts per address after the first. */
export const BOOTSTRAP_RETRIES = 5;
/** First back-off; doubles per attempt up to {@link BOOTSTRAP_MAX_DELAY_MS}. */
export const BOOTSTRAP_RETRY_DELAY_MS = 1_000;
export const BOOTSTRAP_MAX_DELAY_MS = 8_000;
/** One dial attempt's budget (a cold onion circuit takes several seconds). */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 30_000;
/** How long to wait for the first DHT peer after connecting, before the self-lookup. */
export const ROUTING_TABLE_WAIT_MS = 10_000;
/** Whole-bootstrap budget. */
export const BOOTSTRAP_TIMEOUT_MS = 120_000;

/** Progress of {@link bootstrapDialer}, one event per step. */
export type BootstrapProgress =
  | { type: 'dial'; addr: string; attempt: number }
  | { type: 'retry'; addr: string; attempt: number; delayMs: number; error: string }
  | { type: 'connected'; addr: string; attempt: number }
  | { type: 'failed'; addr: string; error: string };

export interface BootstrapOptions {
  retries?: number;
  retryDelayMs?: number;
  dialTimeoutMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (event: BootstrapProgress) => void;
  /** After connecting, run a self-lookup in `node.services.dht` to fill the routing table (default true). */
  selfQuery?: boolean;
}

/**
 * A Kademlia self-lookup (find the peers closest to our own id) fills the routing table right after joining;
 * kad-dht's own self-query may have run before any peer was known and the next one is minutes away.
 */
async function selfQuery(node: Libp2p, signal: AbortSignal): Promise<void> {
  const dht = (node.services as { dht?: KadDHT }).dht;
  if (dht === undefined) return;
  // The routing table gains a peer only after identify confirmed it speaks our DHT protocol; a query run
  // before that finds nobody (allowQueryWithZeroPeers).
  const table = (dht as Partial<SingleKadDHT>).routingTable;
  const deadline = Date.now() + ROUTING_TABLE_WAIT_MS;
  while (table !== undefined && table.size === 0 && Date.now() < deadline && !signal.aborted) {
    await sleep(25, signal);
  }
  try {
    for await (const _ of dht.getClosestPeers(node.peerId.toMultihash().bytes, { signal })) {
      // draining the query is what fills the table
    }
  } catch {
    // best effort: the periodic self-query and later lookups fill the table too
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Dials every bootstrap multiaddr (in parallel, each with retries and exponential back-off). Addresses of
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
  const retries = options.retries ?? BOOTSTRAP_RETRIES;
  const baseDelay = options.retryDelayMs ?? BOOTSTRAP_RETRY_DELAY_MS;
  const signal = withTimeout(options.signal, options.timeoutMs ?? BOOTSTRAP_TIMEOUT_MS, 'bootstrap');
  const connected: string[] = [];
  const failed: string[] = [];
  await Promise.all(
    parsed.map(async ({ addr, ma }) => {
      let lastError = 'aborted';
      for (let attempt = 1; attempt <= retries + 1 && !signal.aborted; attempt++) {
        options.onProgress?.({ type: 'dial', addr, attempt });
        try {
          const dialSignal = withTimeout(
            signal,
            options.dialTimeoutMs ?? BOOTSTRAP_DIAL_TIMEOUT_MS,
            `bootstrap dial ${addr}`,
          );
          await node.dial(ma, { signal: dialSignal });
          connected.push(addr);
          options.onProgress?.({ type: 'connected', addr, attempt });
          return;
        } catch (e) {
          lastError = (e as Error).message;
          if (attempt <= retries && !signal.aborted) {
            const delayMs = Math.min(baseDelay * 2 ** (attempt - 1), BOOTSTRAP_MAX_DELAY_MS);
            options.onProgress?.({ type: 'retry', addr, attempt, delayMs, error: lastError });
            await sleep(delayMs, signal);
          }
        }
      }
      failed.push(addr);
      options.onProgress?.({ type: 'failed', addr, error: lastError });
    }),
  );
  if (options.signal?.aborted) throw abortReason(options.signal, 'bootstrap');
  if (connected.length > 0 && options.selfQuery !== false) await selfQuery(node, signal);
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
