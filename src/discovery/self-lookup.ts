/**
 * A Kademlia self-lookup: find the peers closest to our own id (Kademlia paper §2.3, "To join the network, a
 * node u ... performs a node lookup for its own node ID"). It fills the routing table after joining through a
 * bootstrap agent, and re-joins through the peers the table already holds when no bootstrap agent is
 * configured or reachable (after the agent's tor restarted: the table survived, the connections did not).
 * @module
 */
import '../_polyfill.js';
import type { Libp2p } from '@libp2p/interface';
import type { KadDHT, SingleKadDHT } from '@libp2p/kad-dht';
import { type AbortOptions, raceAbort } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';

/**
 * A self-lookup's budget: best effort (kad-dht's periodic self-query fills the table too), and over tor a
 * lookup that meets slow or dead peers could otherwise hold its caller for minutes.
 */
export const SELF_LOOKUP_TIMEOUT_MS = 30_000;

/** What a finished self-lookup found. */
export interface SelfLookupResult {
  /** Peers in the routing table when the lookup started. */
  tableBefore: number;
  /** Peers the lookup returned as closest to our id (kad-dht `FINAL_PEER` events). */
  closest: number;
  /** Peers in the routing table when it ended. */
  tableAfter: number;
  durationMs: number;
}

export interface SelfLookupOptions extends AbortOptions {
  /** Default {@link SELF_LOOKUP_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Fail with `ERR_PEER_UNREACHABLE` at once when the routing table is empty (default: run the lookup anyway). */
  requirePeers?: boolean;
}

/** The DHT service of a node, and its routing table's size when kad-dht exposes it (a single DHT does). */
function dhtOf(node: Libp2p): { dht: KadDHT; tableSize: () => number | undefined } {
  const dht = (node.services as { dht?: KadDHT }).dht;
  if (dht === undefined) throw new MmogitError('ERR_INTERNAL', 'self-lookup: the node has no DHT service');
  return { dht, tableSize: () => (dht as Partial<SingleKadDHT>).routingTable?.size };
}

/**
 * Runs one self-lookup to its end, bounded by `timeoutMs` on our own clock (raced as well, so a kad-dht query
 * waiting on a stream that ignores the abort cannot hold the caller).
 *
 * @example
 * const r = await selfLookup(node, { requirePeers: true });
 * console.log(`${r.closest} closest peers, table ${r.tableBefore} → ${r.tableAfter}`);
 * @throws MmogitError `ERR_PEER_UNREACHABLE` when `requirePeers` and the table is empty, `ERR_TIMEOUT` past
 *   the bound, `ERR_ABORTED` when the caller aborts; kad-dht's own errors as they come.
 */
export async function selfLookup(node: Libp2p, options: SelfLookupOptions = {}): Promise<SelfLookupResult> {
  const { dht, tableSize } = dhtOf(node);
  const started = Date.now();
  const tableBefore = tableSize() ?? 0;
  if (options.requirePeers && tableBefore === 0) {
    throw new MmogitError('ERR_PEER_UNREACHABLE', 'self-lookup: the routing table holds no peer to ask');
  }
  const what = 'DHT self-lookup';
  const signal = withTimeout(options.signal, options.timeoutMs ?? SELF_LOOKUP_TIMEOUT_MS, what);
  const run = async (): Promise<number> => {
    const found = new Set<string>();
    for await (const e of dht.getClosestPeers(node.peerId.toMultihash().bytes, { signal })) {
      if (e.name === 'FINAL_PEER') found.add(e.peer.id.toString());
    }
    return found.size;
  };
  let closest: number;
  try {
    closest = await raceAbort(run(), signal, what);
  } catch (e) {
    // kad-dht ends an aborted query with its own AbortError: report ours (timeout or the caller's abort)
    if (signal.aborted) throw abortReason(signal, what);
    throw e;
  }
  return { tableBefore, closest, tableAfter: tableSize() ?? 0, durationMs: Date.now() - started };
}
