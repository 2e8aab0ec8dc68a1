/**
 * Discovery over a started libp2p node that runs kad-dht with {@link dhtServiceOptions}: publish our signed
 * advertisement (record + one provider record per service), re-publish it periodically, find agents by
 * service and look one up by onion or public key. Only verified advertisements ever leave this module.
 * @module
 */
import '../_polyfill.js';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLogger } from '../_log.js';
import { abortReason, MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import { type AgentKey, parseOnionAddress } from '../identity/index.js';
import {
  ADVERT_FETCH_TIMEOUT_MS,
  ADVERT_MAX_INBOUND_STREAMS,
  ADVERT_PROTOCOL,
  fetchAdvert,
  serveAdvert,
} from './advert-protocol.js';
import {
  ADVERT_DEFAULT_TTL_MS,
  compareAdvertisements,
  createAdvertisement,
  type SignedAdvertisement,
  type VerifiedAdvertisement,
} from './advertisement.js';
import { advertRecordKey, serviceProviderKey, verifyAdvertRecord } from './dht.js';

/** Default time budget of {@link Discovery.advertise} (a DHT put and one provide per service). */
export const ADVERTISE_TIMEOUT_MS = 60_000;
/** Default time budget of a {@link Discovery.discover} search; when it elapses the search simply ends. */
export const DISCOVER_TIMEOUT_MS = 30_000;
/** Default time budget of {@link Discovery.lookup}. */
export const LOOKUP_TIMEOUT_MS = 20_000;
/** Default re-publish interval: a third of the default lifetime, so two attempts can fail before expiry. */
export const REPUBLISH_INTERVAL_MS = Math.floor(ADVERT_DEFAULT_TTL_MS / 3);
/**
 * discover resolves each provider with a lookup that stops this long after the first valid copy instead of
 * walking the whole query: the owner re-publishes every copy, so the first valid one is current or nearly.
 */
export const DISCOVER_SETTLE_MS = 50;
/**
 * discover first fetches a provider's advert from the provider itself (`/mmogit/advert/1.0.0`); if that has
 * not produced a verified advert after this long (a cold onion connect, a provider that does not answer) it
 * also starts the DHT lookup, and the first verified copy wins. A direct fetch that fails starts it at once.
 */
export const ADVERT_HEDGE_MS = 1_000;
/** How many providers discover resolves at once. */
const RESOLVE_CONCURRENCY = 8;
/** Providers resolved beyond `limit` at once: a spare or two hides one slow provider. */
const RESOLVE_SPARES = 2;

/** Which Discovery answers `/mmogit/advert/1.0.0` on a node (the newest one constructed or advertising). */
const servers = new WeakMap<object, Discovery>();

const defaultLog = createLogger('mmogit:discovery');

/** A libp2p node with our DHT at `services.dht`. */
export type DiscoveryNode = Libp2p<{ dht: KadDHT }>;

/** What one publication reached. */
export interface PublishReport {
  advert: SignedAdvertisement;
  /** Peers that acknowledged the record PUT (excluding ourselves). */
  recordPeers: number;
  /** Peers that received a provider record, per service. */
  providerPeers: Record<string, number>;
  durationMs: number;
}

export interface DiscoveryOptions {
  /** Re-publish interval (ms); capped at half the advert's TTL. */
  republishMs?: number;
  /** Debug sink (default: the `mmogit:discovery` DEBUG logger); never receives key material. */
  logger?: (line: string) => void;
  /** Called after every (re-)publication, including failed re-publications (with `error`). */
  onPublish?: (report: PublishReport | { error: unknown }) => void;
  /** Clock (tests). */
  now?: () => number;
}

export interface AdvertiseOptions {
  ttlMs?: number;
  name?: string;
  description?: string;
  /** Onion virtual port to put in `addrs`; by default the port of our own `/onion3/` announce address. */
  port?: number;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface LookupOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * Stop this long after the first valid copy arrived (faster; may miss a newer copy held by farther
   * peers). By default the whole DHT query runs and the newest copy of all wins.
   */
  settleMs?: number;
}

export interface DiscoverOptions {
  signal?: AbortSignal;
  /** Search budget; when it elapses the search ends quietly with what was found. */
  timeoutMs?: number;
  /** Stop after this many results. */
  limit?: number;
  /** Per-provider lookup settle time, default {@link DISCOVER_SETTLE_MS}. */
  settleMs?: number;
  /**
   * Fetch each provider's advert from the provider first (default true); false resolves through the DHT
   * record only.
   */
  direct?: boolean;
}

/** A provider as findProviders reports it. */
interface FoundProvider {
  id: PeerId;
  publicKey: Uint8Array;
  multiaddrs: Multiaddr[];
}

/** Public key of an Ed25519 PeerId (agents' PeerIds are their Ed25519 keys), else undefined. */
export function peerIdPublicKey(peerId: PeerId): Uint8Array | undefined {
  return peerId.type === 'Ed25519' ? peerId.publicKey.raw : undefined;
}

function toPublicKey(onionOrPubkey: string | Uint8Array): Uint8Array {
  if (onionOrPubkey instanceof Uint8Array) {
    if (onionOrPubkey.length !== 32)
      throw new MmogitError('ERR_INVALID_ARGUMENT', 'public key must be 32 bytes');
    return onionOrPubkey;
  }
  if (/^[0-9a-fA-F]{64}$/.test(onionOrPubkey)) return new Uint8Array(Buffer.from(onionOrPubkey, 'hex'));
  return parseOnionAddress(onionOrPubkey).publicKey;
}

/**
 * Advertises this agent and finds others in the DHT.
 *
 * @example
 * const d = new Discovery(node, key);
 * await d.advertise(['memory_sync']);
 * for await (const peer of d.discover('memory_sync', { limit: 5 })) console.error(peer.advert.onion);
 * d.stop();
 */
export class Discovery {
  readonly #node: DiscoveryNode;
  readonly #dht: KadDHT;
  readonly #key: AgentKey;
  readonly #options: DiscoveryOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = new AbortController();
  #current: { services: string[]; options: AdvertiseOptions } | undefined;
  #last: SignedAdvertisement | undefined;
  #serving: Promise<void>;

  constructor(node: DiscoveryNode, key: AgentKey, options: DiscoveryOptions = {}) {
    const dht = node.services?.dht;
    if (dht === undefined) throw new MmogitError('ERR_INVALID_ARGUMENT', 'node has no services.dht');
    const nodeKey = peerIdPublicKey(node.peerId);
    if (nodeKey === undefined || !Buffer.from(nodeKey).equals(Buffer.from(key.publicKey))) {
      // The advert's pubkey must be the PeerId others find as provider, or discover could not resolve it.
      throw new MmogitError('ERR_INVALID_ARGUMENT', "the node's PeerId is not the agent's Ed25519 key");
    }
    this.#node = node;
    this.#dht = dht;
    this.#key = key;
    this.#options = options;
    this.#serving = this.#serve();
  }

  /**
   * Registers the `/mmogit/advert/1.0.0` handler (docs/protocol.md §6, Direct fetch); `force` so the
   * newest Discovery on a node answers. Never throws: without it peers fall back to the DHT record.
   */
  async #serve(): Promise<void> {
    servers.set(this.#node, this);
    try {
      await this.#node.handle(ADVERT_PROTOCOL, (stream: Stream) => this.#answer(stream), {
        force: true,
        maxInboundStreams: ADVERT_MAX_INBOUND_STREAMS,
      });
    } catch (e) {
      this.#log(`cannot serve ${ADVERT_PROTOCOL}: ${(e as Error).message}`);
    }
  }

  #answer(stream: Stream): Promise<void> {
    const last = this.#last;
    // nothing published yet, or it ran out: say nothing, the dialer falls back to the DHT
    const bytes = last !== undefined && last.advert.expiresAt > this.#now() ? last.bytes : undefined;
    return serveAdvert(stream, bytes, { signal: this.#stopped.signal });
  }

  /** The advertisement most recently published. */
  get current(): SignedAdvertisement | undefined {
    return this.#last;
  }

  #log(line: string): void {
    if (this.#options.logger) this.#options.logger(`mmogit:discovery ${line}`);
    else defaultLog(line);
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  #ownOnionPort(): number | undefined {
    const prefix = `/onion3/${this.#key.serviceId}:`;
    for (const ma of this.#node.getMultiaddrs()) {
      const s = ma.toString();
      if (s.startsWith(prefix)) return Number.parseInt(s.slice(prefix.length), 10);
    }
    return undefined;
  }

  /**
   * Signs a fresh advertisement, PUTs it under `/mmogit/ad/<pubkey>` and provides each service key; then
   * re-publishes a fresh one every `republishMs` until {@link stop} (kad-dht does not re-publish values, and
   * a fresh record repairs nodes that a replayed older one overwrote).
   *
   * @throws MmogitError `ERR_INVALID_ARGUMENT`, `ERR_TOO_LARGE`, `ERR_TIMEOUT`, `ERR_ABORTED`.
   */
  async advertise(services: string[], options: AdvertiseOptions = {}): Promise<SignedAdvertisement> {
    if (this.#stopped.signal.aborted) {
      this.#stopped = new AbortController();
      this.#serving = this.#serve();
    }
    await this.#serving;
    const report = await this.#publish(services, options);
    this.#current = { services, options: { ...options, signal: undefined } };
    this.#schedule(options.ttlMs ?? ADVERT_DEFAULT_TTL_MS);
    return report.advert;
  }

  /** Publishes once (no schedule change); used by advertise and the re-publish timer. */
  async #publish(services: string[], options: AdvertiseOptions): Promise<PublishReport> {
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? ADVERTISE_TIMEOUT_MS;
    const signal = AbortSignal.any([
      withTimeout(options.signal, timeoutMs, 'advertise'),
      this.#stopped.signal,
    ]);
    const advert = createAdvertisement(this.#key, {
      services,
      ttlMs: options.ttlMs,
      name: options.name,
      description: options.description,
      port: options.port ?? this.#ownOnionPort(),
      now: this.#now(),
    });
    const self = this.#node.peerId;
    try {
      let recordPeers = 0;
      for await (const e of this.#dht.put(advertRecordKey(this.#key.publicKey), advert.bytes, { signal })) {
        if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE' && !e.from.equals(self))
          recordPeers++;
      }
      this.#last = advert;
      const providerPeers: Record<string, number> = {};
      await Promise.all(
        advert.advert.services.map(async (service) => {
          let n = 0;
          for await (const e of this.#dht.provide(serviceProviderKey(service), { signal })) {
            if (e.name === 'PEER_RESPONSE' && e.messageName === 'ADD_PROVIDER') n++;
          }
          providerPeers[service] = n;
        }),
      );
      const report: PublishReport = {
        advert,
        recordPeers,
        providerPeers,
        durationMs: performance.now() - started,
      };
      this.#log(`published to ${recordPeers} peers in ${report.durationMs.toFixed(0)} ms`);
      this.#options.onPublish?.(report);
      return report;
    } catch (e) {
      if (signal.aborted) throw abortReason(signal, 'advertise');
      throw e;
    }
  }

  #schedule(ttlMs: number): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const every = Math.max(
      1,
      Math.min(this.#options.republishMs ?? REPUBLISH_INTERVAL_MS, Math.floor(ttlMs / 2)),
    );
    let running = false;
    this.#timer = setInterval(() => {
      const current = this.#current;
      if (running || current === undefined) return;
      running = true;
      this.#publish(current.services, current.options)
        .catch((error: unknown) => {
          this.#log(`re-publish failed: ${(error as Error).message}`);
          this.#options.onPublish?.({ error });
        })
        .finally(() => {
          running = false;
        });
    }, every);
    this.#timer.unref?.();
  }

  /**
   * Fetches every copy of an agent's record the DHT returns, verifies each and returns the newest valid one
   * (not kad-dht's single pick: a replayed older copy cannot win here), or null.
   */
  async lookup(
    onionOrPubkey: string | Uint8Array,
    options: LookupOptions = {},
  ): Promise<VerifiedAdvertisement | null> {
    const publicKey = toPublicKey(onionOrPubkey);
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
        const v = verifyAdvertRecord(key, value, { now: this.#now() });
        if (best === null || compareAdvertisements(v, best) > 0) best = v;
        if (options.settleMs !== undefined && settleTimer === undefined) {
          settleTimer = setTimeout(() => settle.abort(), options.settleMs);
        }
      } catch (e) {
        this.#log(`dropped record: ${(e as MmogitError).details?.reason ?? (e as Error).message}`);
      }
    };
    try {
      for await (const e of this.#dht.get(key, { signal }) as AsyncIterable<QueryEvent>) {
        if (e.name === 'VALUE') consider(e.value);
        else if (e.name === 'PEER_RESPONSE' && e.record != null) consider(e.record.value);
      }
    } catch (e) {
      // kad-dht throws after a failed correction of a stale peer or when nothing is found; what we collected
      // stands. Only the caller's own abort is an error.
      if (options.signal?.aborted) throw abortReason(options.signal, 'lookup');
      if (!signal.aborted) this.#log(`lookup ended: ${(e as Error).message}`);
    } finally {
      clearTimeout(settleTimer);
    }
    if (options.signal?.aborted) throw abortReason(options.signal, 'lookup');
    return best;
  }

  /**
   * Finds agents that provide `service` and yields each one's verified advertisement (which must list the
   * service), as soon as it is resolved. Ends when the DHT search ends, `limit` results were yielded, or
   * `timeoutMs` elapsed. Our own advertisement is not yielded.
   *
   * @throws MmogitError `ERR_ABORTED` when the caller's signal fires.
   */
  async *discover(service: string, options: DiscoverOptions = {}): AsyncIterable<VerifiedAdvertisement> {
    throwIfAborted(options.signal, 'discover');
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return;
    const done = new AbortController();
    const budget = withTimeout(options.signal, options.timeoutMs ?? DISCOVER_TIMEOUT_MS, 'discover');
    const signal = AbortSignal.any([budget, done.signal]);
    const self = this.#key.publicKey;
    const seen = new Set<string>();
    const ready: VerifiedAdvertisement[] = [];
    const direct = options.direct ?? true;
    const settleMs = options.settleMs ?? DISCOVER_SETTLE_MS;
    // Each DHT-only resolution is a query: with a small limit, fewer at once reach the first result sooner.
    // A direct fetch is one stream, so a spare or two race a slow provider.
    const concurrency = Math.min(RESOLVE_CONCURRENCY, direct ? limit + RESOLVE_SPARES : limit);
    let pending = 0;
    let yielded = 0;
    let searching = false;
    /** a search ran to its end: every provider the DHT knows was seen */
    let exhausted = false;
    let search: Promise<void> = Promise.resolve();
    let wake: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    signal.addEventListener('abort', notify, { once: true });
    const queue: FoundProvider[] = [];
    /** providers yielded, verified or still being resolved: what `limit` may still get from what we know */
    const inHand = (): number => yielded + ready.length + pending + queue.length;
    const pump = (): void => {
      while (pending < concurrency && queue.length > 0 && !signal.aborted) {
        const p = queue.shift() as FoundProvider;
        pending++;
        this.#resolve(p, service, { signal, settleMs, direct })
          .then((v) => {
            if (v !== null) ready.push(v);
            else if (!signal.aborted)
              this.#log(
                `provider ${Buffer.from(p.publicKey).toString('hex').slice(0, 12)}: no advert for ${service}`,
              );
          })
          .catch(() => {})
          .finally(() => {
            pending--;
            pump();
            // the search stopped early and a provider fell through: look for more
            if (!searching && !exhausted && inHand() < limit && !signal.aborted) startSearch();
            notify();
          });
      }
    };
    const startSearch = (): void => {
      searching = true;
      // Stopped once `limit` providers are in hand: the rest of the query (more hops, more peers) would only
      // load the network while the fetches run. Restarted if one of them falls through (seen ones skipped).
      const enough = new AbortController();
      const searchSignal = AbortSignal.any([signal, enough.signal]);
      search = (async () => {
        try {
          for await (const e of this.#dht.findProviders(serviceProviderKey(service), {
            signal: searchSignal,
          })) {
            if (e.name !== 'PROVIDER') continue;
            for (const p of e.providers) {
              const pk = peerIdPublicKey(p.id);
              if (pk === undefined || Buffer.from(pk).equals(Buffer.from(self))) continue;
              const hex = Buffer.from(pk).toString('hex');
              if (seen.has(hex)) continue;
              seen.add(hex);
              const found = { id: p.id, publicKey: pk, multiaddrs: p.multiaddrs };
              // a provider we are already connected to answers without a dial (over tor: a rendezvous)
              if (direct && this.#node.getConnections(p.id).length > 0) queue.unshift(found);
              else queue.push(found);
            }
            pump();
            if (inHand() >= limit) {
              enough.abort();
              return;
            }
          }
          exhausted = true;
        } catch (e) {
          if (!enough.signal.aborted) exhausted = true;
          if (!searchSignal.aborted) this.#log(`findProviders ended: ${(e as Error).message}`);
        } finally {
          searching = false;
          notify();
        }
      })();
    };
    startSearch();
    try {
      while (yielded < limit) {
        const next = ready.shift();
        if (next !== undefined) {
          yielded++;
          yield next;
          continue;
        }
        if ((!searching && pending === 0 && queue.length === 0) || signal.aborted) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      done.abort();
      await search;
    }
    throwIfAborted(options.signal, 'discover');
  }

  /**
   * Resolves one provider to its verified advertisement listing `service`, or null: the direct fetch first,
   * the DHT record when that fails or after {@link ADVERT_HEDGE_MS}; the first verified copy wins and the
   * other attempt is aborted. Never throws.
   */
  async #resolve(
    p: FoundProvider,
    service: string,
    options: { signal: AbortSignal; settleMs: number; direct: boolean },
  ): Promise<VerifiedAdvertisement | null> {
    const usable = (v: VerifiedAdvertisement | null): VerifiedAdvertisement | null =>
      v?.advert.services.includes(service) ? v : null;
    const fromDht = (signal: AbortSignal): Promise<VerifiedAdvertisement | null> =>
      this.lookup(p.publicKey, { signal, settleMs: options.settleMs }).then(usable, () => null);
    if (!options.direct) return fromDht(options.signal);
    const won = new AbortController();
    const signal = AbortSignal.any([options.signal, won.signal]);
    const id = Buffer.from(p.publicKey).toString('hex').slice(0, 12);
    return new Promise<VerifiedAdvertisement | null>((resolve) => {
      let open = 1;
      let dhtStarted = false;
      let hedge: ReturnType<typeof setTimeout> | undefined;
      const settle = (v: VerifiedAdvertisement | null): void => {
        open--;
        if (v === null && open > 0) return;
        clearTimeout(hedge);
        won.abort();
        resolve(v);
      };
      const startDht = (): void => {
        if (dhtStarted || signal.aborted) return;
        dhtStarted = true;
        open++;
        fromDht(signal).then(settle);
      };
      hedge = setTimeout(startDht, ADVERT_HEDGE_MS);
      fetchAdvert(this.#node, p.id, p.multiaddrs, {
        signal,
        timeoutMs: ADVERT_FETCH_TIMEOUT_MS,
        now: this.#now(),
      })
        .then(usable, (e: unknown) => {
          if (!signal.aborted) {
            const reason = (e as MmogitError).details?.reason;
            this.#log(`direct fetch from ${id} failed: ${reason ?? (e as Error).message}`);
          }
          return null;
        })
        .then((v) => {
          // a miss starts the DHT copy now (before settle, so `open` counts it)
          if (v === null) startDht();
          settle(v);
        });
    });
  }

  /** Stops re-publishing and aborts publications in flight. Records already stored age out at expiresAt. */
  stop(): void {
    if (servers.get(this.#node) === this) {
      servers.delete(this.#node);
      this.#node.unhandle(ADVERT_PROTOCOL).catch(() => {});
    }
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#current = undefined;
    this.#stopped.abort(new MmogitError('ERR_ABORTED', 'discovery stopped'));
    for (const service of this.#last?.advert.services ?? []) {
      this.#dht.cancelReprovide(serviceProviderKey(service)).catch(() => {});
    }
  }
}
