/**
 * Discovery over a started libp2p node that runs kad-dht with {@link dhtServiceOptions}: publish our signed
 * advertisement (record + one provider record per service), re-publish it periodically, find agents by
 * service and look one up by onion or public key. Only verified advertisements ever leave this module.
 * @module
 */
import '../_polyfill.js';
import type { Stream } from '@libp2p/interface';
import type { KadDHT } from '@libp2p/kad-dht';
import type { AbortOptions } from '../_async.js';
import { createLogger } from '../_log.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import { type AgentKey, parseOnionAddress } from '../identity/index.js';
import type { AgentExtension } from './a2a-card.js';
import { ADVERT_MAX_INBOUND_STREAMS, ADVERT_PROTOCOL, serveAdvert } from './advert-protocol.js';
import {
  ADVERT_DEFAULT_TTL_MS,
  createAdvertisement,
  type SignedAdvertisement,
  type VerifiedAdvertisement,
} from './advertisement.js';
import { advertRecordKey, serviceProviderKey } from './dht.js';
import { type DiscoverOptions, discoverAdverts } from './discover.js';
import { type DiscoveryNode, peerIdPublicKey } from './discovery-node.js';
import { type FindContext, type LookupOptions, lookupAdvert } from './lookup.js';

export {
  ADVERT_HEDGE_MS,
  DISCOVER_SETTLE_MS,
  DISCOVER_TIMEOUT_MS,
  type DiscoverOptions,
} from './discover.js';
export { type DiscoveryNode, isDiscoveryNode, peerIdPublicKey } from './discovery-node.js';
export { LOOKUP_TIMEOUT_MS, type LookupOptions } from './lookup.js';

/** Default time budget of {@link Discovery.advertise} (a DHT put and one provide per service). */
export const ADVERTISE_TIMEOUT_MS = 60_000;
/** Default re-publish interval: a third of the default lifetime, so two attempts can fail before expiry. */
export const REPUBLISH_INTERVAL_MS = Math.floor(ADVERT_DEFAULT_TTL_MS / 3);
/**
 * First delay before publishing again when a publication reached no peer for the record or for a service
 * (an agent that advertises before its routing table fills, e.g. right after start over tor); it doubles up
 * to {@link SPARSE_RETRY_MAX_MS} until a publication reaches at least one peer for each, so an advert is
 * not invisible until the next regular re-publish.
 */
export const SPARSE_RETRY_FIRST_MS = 2_000;
export const SPARSE_RETRY_MAX_MS = 60_000;
/** How many live agents (adverts fetched from the agent itself) a Discovery remembers to prefer. */
export const MAX_LIVE_PEERS = 256;
/** Which Discovery answers `/mmogit/advert/1.0.0` on a node (the newest one constructed or advertising). */
const servers = new WeakMap<object, Discovery>();

const defaultLog = createLogger('mmogit:discovery');

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

export interface AdvertiseOptions extends AbortOptions {
  ttlMs?: number;
  name?: string;
  description?: string;
  /** Onion virtual port to put in `addrs`; by default the port of our own `/onion3/` announce address. */
  port?: number;
  /** A2A extensions for the card, e.g. a mesh relay descriptor (docs/protocol.md §8.8). */
  extensions?: readonly AgentExtension[];
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
  #sparseTimer: ReturnType<typeof setTimeout> | undefined;
  #sparseDelayMs = SPARSE_RETRY_FIRST_MS;
  #stopped = new AbortController();
  #current: { services: string[]; options: AdvertiseOptions } | undefined;
  #last: SignedAdvertisement | undefined;
  #serving: Promise<void>;
  /** Agents whose advert came from themselves in a search (hex key → key), newest last. */
  readonly #live = new Map<string, Uint8Array>();

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
    this.#sparseDelayMs = SPARSE_RETRY_FIRST_MS;
    this.#afterPublish(report);
    return report.advert;
  }

  /** A publication that reached no peer for the record or some service is repeated soon, with back-off. */
  #afterPublish(report: PublishReport): void {
    if (this.#sparseTimer !== undefined) clearTimeout(this.#sparseTimer);
    this.#sparseTimer = undefined;
    const sparse = report.recordPeers === 0 || Object.values(report.providerPeers).some((n) => n === 0);
    if (!sparse || this.#stopped.signal.aborted) {
      this.#sparseDelayMs = SPARSE_RETRY_FIRST_MS;
      return;
    }
    const delay = this.#sparseDelayMs;
    this.#sparseDelayMs = Math.min(delay * 2, SPARSE_RETRY_MAX_MS);
    this.#log(`publication reached no peer for some key: again in ${delay} ms`);
    this.#sparseTimer = setTimeout(() => {
      this.#sparseTimer = undefined;
      this.#republish();
    }, delay);
    this.#sparseTimer.unref?.();
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
      ...(options.extensions ? { extensions: options.extensions } : {}),
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
    this.#timer = setInterval(() => this.#republish(), every);
    this.#timer.unref?.();
  }

  #republishing = false;

  /** One re-publication of the current advert (timer or sparse retry); never two at once, never throws. */
  #republish(): void {
    const current = this.#current;
    if (this.#republishing || current === undefined) return;
    this.#republishing = true;
    this.#publish(current.services, current.options)
      .then((report) => this.#afterPublish(report))
      .catch((error: unknown) => {
        this.#log(`re-publish failed: ${(error as Error).message}`);
        this.#options.onPublish?.({ error });
      })
      .finally(() => {
        this.#republishing = false;
      });
  }

  /** What lookup and discover need of this instance. */
  #find(): FindContext {
    return {
      node: this.#node,
      dht: this.#dht,
      selfKey: this.#key.publicKey,
      now: () => this.#now(),
      log: (line) => this.#log(line),
    };
  }

  /**
   * Fetches every copy of an agent's record the DHT returns, verifies each and returns the newest valid one
   * (not kad-dht's single pick: a replayed older copy cannot win here), or null.
   */
  lookup(
    onionOrPubkey: string | Uint8Array,
    options: LookupOptions = {},
  ): Promise<VerifiedAdvertisement | null> {
    return lookupAdvert(this.#find(), toPublicKey(onionOrPubkey), options);
  }

  /**
   * Finds agents that provide `service` and yields each one's verified advertisement (which must list the
   * service), as soon as it is resolved. Ends when the DHT search ends, `limit` results were yielded, or
   * `timeoutMs` elapsed. Our own advertisement is not yielded.
   *
   * @throws MmogitError `ERR_ABORTED` when the caller's signal fires.
   */
  /**
   * Finds agents that provide `service` (see {@link discoverAdverts}). Agents whose advert came from the agent
   * itself in an earlier search (live, holding their key) are preferred next time, after `options.prefer`.
   */
  discover(service: string, options: DiscoverOptions = {}): AsyncIterable<VerifiedAdvertisement> {
    const live = [...this.#live.values()];
    return discoverAdverts(this.#find(), service, {
      ...options,
      prefer: [...(options.prefer ?? []), ...live],
      onLive: (pk) => {
        const hex = Buffer.from(pk).toString('hex');
        this.#live.delete(hex);
        this.#live.set(hex, pk);
        // the oldest one goes first (a Map keeps insertion order)
        if (this.#live.size > MAX_LIVE_PEERS) this.#live.delete(this.#live.keys().next().value as string);
        options.onLive?.(pk);
      },
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
    if (this.#sparseTimer !== undefined) clearTimeout(this.#sparseTimer);
    this.#sparseTimer = undefined;
    this.#current = undefined;
    this.#stopped.abort(new MmogitError('ERR_ABORTED', 'discovery stopped'));
    for (const service of this.#last?.advert.services ?? []) {
      this.#dht.cancelReprovide(serviceProviderKey(service)).catch(() => {});
    }
  }
}
