/**
 * Where provider records of one key sit in a simulated network, and what a provider search touched: the
 * diagnosis of a discover that ends without a provider (issue 15, "Scale").
 *
 * Every node's kad-dht keeps the provider records it was sent in its datastore (`providers.getProviders`,
 * @libp2p/kad-dht 16 `providers.js`); all N nodes live in this process, so the true k XOR-closest nodes to the
 * key (Kademlia's distance on sha256 of the key's multihash and of each peer's multihash, Maymounkov &
 * Mazières 2002 §2.1, the libp2p kad-dht spec "Distance") can be ranked and compared with the nodes that hold
 * a record and with the nodes a query contacted. Ranks are 0-based: rank 0 is the node closest to the key.
 *
 * Only the simulation reads node internals: nothing here is used by src/.
 * @module
 */
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { PeerId } from '@libp2p/interface';
import type { QueryEvent } from '@libp2p/kad-dht';
import type { CID } from 'multiformats/cid';
import type { DiscoveryNode } from '../src/discovery/index.js';

/** kad-dht's bucket size k, the number of nodes a provider record is sent to. */
export const K = 20;

/** What the simulation reads of a node's kad-dht beyond the public interface. */
interface DhtInternals {
  providers?: { getProviders(cid: CID): Promise<PeerId[]> };
  routingTable?: { size: number; closestPeers(kadId: Uint8Array, o: { count: number }): PeerId[] };
}

function internals(node: DiscoveryNode): DhtInternals {
  return node.services.dht as unknown as DhtInternals;
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

function xorCompare(a: Buffer, b: Buffer, key: Buffer): number {
  for (let i = 0; i < key.length; i++) {
    const x = (a[i] as number) ^ (key[i] as number);
    const y = (b[i] as number) ^ (key[i] as number);
    if (x !== y) return x - y;
  }
  return 0;
}

/** A compact summary of ranks: count, how many under k, the smallest few. */
function ranksSummary(ranks: number[]): { n: number; inTopK: number; lowest: number[] } {
  const s = [...ranks].sort((a, b) => a - b);
  return { n: s.length, inTopK: s.filter((r) => r < K).length, lowest: s.slice(0, 8) };
}

/** One query's events, reduced to what the diagnosis needs. */
export class QueryLog {
  readonly sent = new Set<string>();
  readonly responded = new Set<string>();
  /** responders whose answer named at least one provider */
  readonly withProviders = new Set<string>();
  readonly errors = new Map<string, number>();
  pathsEnded = 0;
  readonly started = performance.now();
  endedMs = 0;

  see(e: QueryEvent): void {
    if (e.name === 'SEND_QUERY') this.sent.add(e.to.toString());
    else if (e.name === 'PEER_RESPONSE') {
      const from = e.from.toString();
      this.responded.add(from);
      if ((e.providers?.length ?? 0) > 0) this.withProviders.add(from);
    } else if (e.name === 'QUERY_ERROR') {
      const err = e.error as Error;
      const what = `${err.name}: ${String(err.message).slice(0, 60)}`;
      this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
    } else if (e.name === 'PATH_ENDED') this.pathsEnded++;
  }

  end(): void {
    this.endedMs = performance.now() - this.started;
  }
}

/** The diagnosis of one network and one provider key. */
export class DhtDiagnosis {
  readonly #nodes: DiscoveryNode[];
  readonly #cid: CID;
  readonly #key: Buffer;
  /** peer id string → rank by XOR distance to the key */
  readonly #rank = new Map<string, number>();
  /** peer id string → node index */
  readonly #index = new Map<string, number>();
  readonly #lag = monitorEventLoopDelay({ resolution: 20 });

  constructor(nodes: DiscoveryNode[], cid: CID) {
    this.#nodes = nodes;
    this.#cid = cid;
    // kad-dht queries and stores by sha256(key.multihash.bytes) (content-routing, query-path convertBuffer)
    this.#key = sha256(cid.multihash.bytes);
    const ids = nodes.map((n, i) => ({
      id: n.peerId.toString(),
      kad: sha256(n.peerId.toMultihash().bytes),
      i,
    }));
    ids.sort((a, b) => xorCompare(a.kad, b.kad, this.#key));
    ids.forEach((x, r) => {
      this.#rank.set(x.id, r);
      this.#index.set(x.id, x.i);
    });
    this.#lag.enable();
  }

  rank(id: string): number {
    return this.#rank.get(id) ?? -1;
  }

  /** node index → the provider peer ids it holds for the key (only nodes that hold any). */
  async holders(): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (let i = 0; i < this.#nodes.length; i++) {
      const p = internals(this.#nodes[i] as DiscoveryNode).providers;
      if (p === undefined) continue;
      const list = await p.getProviders(this.#cid);
      if (list.length > 0)
        out.set(
          i,
          list.map((x) => x.toString()),
        );
    }
    return out;
  }

  /** Where `provider`'s records are, against the true k closest and against what its provide query found. */
  async advertised(providerIndex: number, provide: QueryLog, finalPeers: string[]): Promise<unknown> {
    const prov = (this.#nodes[providerIndex] as DiscoveryNode).peerId.toString();
    const held = [...(await this.holders()).entries()]
      .filter(([i, ps]) => ps.includes(prov) && i !== providerIndex)
      .map(([i]) => this.rank((this.#nodes[i] as DiscoveryNode).peerId.toString()));
    return {
      provider: providerIndex,
      providerRank: this.rank(prov),
      holders: ranksSummary(held),
      provideFinalPeers: ranksSummary(finalPeers.map((p) => this.rank(p))),
      provideContacted: ranksSummary([...provide.sent].map((p) => this.rank(p))),
      provideErrors: Object.fromEntries(provide.errors),
      provideMs: Math.round(provide.endedMs),
    };
  }

  /** Before a search from `from`: its routing table's k closest to the key (the query's starting peers). */
  startingPeers(from: number): { rtSize: number; start: ReturnType<typeof ranksSummary> } {
    const rt = internals(this.#nodes[from] as DiscoveryNode).routingTable;
    const start = rt?.closestPeers(this.#key, { count: K }) ?? [];
    return { rtSize: rt?.size ?? 0, start: ranksSummary(start.map((p) => this.rank(p.toString()))) };
  }

  /** What a search from `from` touched, against the nodes that hold a record now. */
  async searched(
    from: number,
    found: boolean,
    log: QueryLog,
    before: ReturnType<DhtDiagnosis['startingPeers']>,
  ): Promise<unknown> {
    const holders = await this.holders();
    const holderIds = new Set(
      [...holders.keys()].map((i) => (this.#nodes[i] as DiscoveryNode).peerId.toString()),
    );
    const lag = this.#lag;
    const out = {
      from,
      found,
      ms: Math.round(log.endedMs),
      rtSize: before.rtSize,
      startRanks: before.start,
      contacted: ranksSummary([...log.sent].map((p) => this.rank(p))),
      responded: ranksSummary([...log.responded].map((p) => this.rank(p))),
      holdersContacted: [...log.sent].filter((p) => holderIds.has(p)).length,
      holdersResponded: [...log.responded].filter((p) => holderIds.has(p)).length,
      answersWithProviders: log.withProviders.size,
      errors: Object.fromEntries(log.errors),
      pathsEnded: log.pathsEnded,
      holdersNow: ranksSummary(
        [...holders.keys()].map((i) => this.rank((this.#nodes[i] as DiscoveryNode).peerId.toString())),
      ),
      loopLagMs: {
        p50: Math.round(lag.percentile(50) / 1e6),
        p99: Math.round(lag.percentile(99) / 1e6),
        max: Math.round(lag.max / 1e6),
      },
    };
    lag.reset();
    return out;
  }

  /** Routing-table sizes over all nodes (min, median, max), and the nodes whose table has under 5 peers. */
  tables(): {
    min: number;
    median: number;
    max: number;
    small: { node: number; rtSize: number; connections: number }[];
  } {
    const sizes = this.#nodes.map((n) => internals(n).routingTable?.size ?? 0);
    const s = [...sizes].sort((a, b) => a - b);
    const small = sizes.flatMap((rtSize, node) =>
      rtSize < 5
        ? [{ node, rtSize, connections: (this.#nodes[node] as DiscoveryNode).getConnections().length }]
        : [],
    );
    return {
      min: s[0] ?? 0,
      median: s[Math.floor(s.length / 2)] ?? 0,
      max: s[s.length - 1] ?? 0,
      small: small.slice(0, 20),
    };
  }

  stop(): void {
    this.#lag.disable();
  }
}
