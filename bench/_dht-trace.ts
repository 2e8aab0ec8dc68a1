/**
 * Hop counts of kad-dht queries, read from the query events kad-dht yields (`SEND_QUERY`, `PEER_RESPONSE`
 * with its `closer` peers, `FINAL_PEER`, `PROVIDER`): a peer from our own routing table is 1 hop away, a peer
 * first named in the answer of a peer h hops away is h + 1. Kademlia's lookup (Maymounkov & Mazières 2002,
 * §2.3) is expected to take O(log N) such rounds.
 *
 * {@link tracedNode} hands Discovery a view of a node whose `services.dht` records every query's trace; the
 * DHT itself is untouched.
 * @module
 */
import type { PeerId } from '@libp2p/interface';
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht';
import type { DiscoveryNode } from '../src/discovery/index.js';

/** One DHT call's hops. */
export interface QueryTrace {
  op: string;
  /** Hops to the peer that answered the first PROVIDER / VALUE event (0: our own store), if any. */
  firstResultHops: number | undefined;
  /** The largest hop count of a FINAL_PEER (the k closest found), if any. */
  finalPeerHops: number | undefined;
  /** The largest hop count of a peer that answered. */
  maxHops: number;
  /** Peers that answered. */
  responses: number;
}

const TRACED = new Set(['findProviders', 'put', 'provide', 'get', 'getClosestPeers']);

/** Follows one query's events. */
export class HopCounter {
  readonly #depth = new Map<string, number>();
  readonly trace: QueryTrace;
  readonly #self: string;

  constructor(op: string, self: PeerId) {
    this.#self = self.toString();
    this.trace = { op, firstResultHops: undefined, finalPeerHops: undefined, maxHops: 0, responses: 0 };
  }

  #hops(id: PeerId): number {
    const key = id.toString();
    if (key === this.#self) return 0;
    let d = this.#depth.get(key);
    if (d === undefined) {
      d = 1;
      this.#depth.set(key, d);
    }
    return d;
  }

  see(e: QueryEvent): void {
    const t = this.trace;
    if (e.name === 'SEND_QUERY') this.#hops(e.to);
    else if (e.name === 'PEER_RESPONSE') {
      const d = this.#hops(e.from);
      t.responses++;
      if (d > t.maxHops) t.maxHops = d;
      for (const c of e.closer ?? []) {
        const key = c.id.toString();
        if (key !== this.#self && !this.#depth.has(key)) this.#depth.set(key, d + 1);
      }
    } else if (e.name === 'FINAL_PEER') {
      const d = this.#hops(e.peer.id);
      t.finalPeerHops = Math.max(t.finalPeerHops ?? 0, d);
    } else if (e.name === 'PROVIDER' || e.name === 'VALUE') {
      t.firstResultHops ??= this.#hops(e.from);
    }
  }
}

/** Sees every event of one traced call (op: the DHT method's name). */
export type EventTap = (op: string, e: QueryEvent) => void;

async function* traced(
  source: AsyncIterable<QueryEvent>,
  counter: HopCounter,
  sink: (t: QueryTrace) => void,
  tap: EventTap | undefined,
): AsyncGenerator<QueryEvent> {
  try {
    for await (const e of source) {
      counter.see(e);
      tap?.(counter.trace.op, e);
      yield e;
    }
  } finally {
    sink(counter.trace);
  }
}

/**
 * A view of `node` for `new Discovery(view, key)`: its `services.dht` is a proxy whose query methods feed
 * `sink` one {@link QueryTrace} per call when the call's iteration ends. Every other member is the node's own
 * (methods bound to the node, whose private fields a proxy receiver would not have). `tap`, when given, also
 * sees each event as it comes (the diagnosis of bench/_dht-diagnose.ts).
 */
export function tracedNode(
  node: DiscoveryNode,
  sink: (t: QueryTrace) => void,
  tap?: EventTap,
): DiscoveryNode {
  const dht = node.services.dht;
  const dhtView = new Proxy(dht, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...args: unknown[]) => unknown;
      if (typeof prop === 'string' && TRACED.has(prop))
        return (...args: unknown[]) =>
          traced(
            fn.apply(target, args) as AsyncIterable<QueryEvent>,
            new HopCounter(prop, node.peerId),
            sink,
            tap,
          );
      return fn.bind(target);
    },
  }) as KadDHT;
  const services = { ...node.services, dht: dhtView };
  return new Proxy(node, {
    get(target, prop) {
      if (prop === 'services') return services;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
