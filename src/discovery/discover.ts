/**
 * Finding agents by service: the DHT's provider records name the agents, and each one's advertisement is fetched
 * from the agent itself (`/mmogit/advert/1.0.0`) with the DHT record as hedge and fallback. Only verified
 * advertisements that list the service are yielded, each once, as soon as they are resolved.
 * @module
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { AbortOptions } from '../_async.js';
import { type MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import { ADVERT_FETCH_TIMEOUT_MS, fetchAdvert } from './advert-protocol.js';
import type { VerifiedAdvertisement } from './advertisement.js';
import { serviceProviderKey } from './dht.js';
import { peerIdPublicKey } from './discovery-node.js';
import { type FindContext, lookupAdvert } from './lookup.js';

/** Default time budget of a {@link Discovery.discover} search; when it elapses the search simply ends. */
export const DISCOVER_TIMEOUT_MS = 30_000;
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
/**
 * The head start of preferred agents ({@link DiscoverOptions.prefer}): strangers found by the provider search
 * wait this long, or until every preferred agent is resolved, before they are resolved. A flood of throw-away
 * adverts for a service (a Sybil attack: valid adverts cost a key each) then cannot push a known agent out
 * of a small `limit`, and an offline contact delays strangers by at most this.
 */
export const PREFERRED_HEAD_START_MS = 5_000;
/** How many providers discover resolves at once. */
const RESOLVE_CONCURRENCY = 8;
/** Providers resolved beyond `limit` at once: a spare or two hides one slow provider. */
const RESOLVE_SPARES = 2;

export interface DiscoverOptions extends AbortOptions {
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
  /**
   * Public keys (32 bytes) of agents to try first: contacts and peers verified before. Each is resolved
   * (direct fetch, then its DHT record) whether or not the provider search names it, and yielded before any
   * stranger if it lists the service; strangers wait {@link PREFERRED_HEAD_START_MS} at most.
   */
  prefer?: readonly Uint8Array[];
  /** Called with the public key of each agent whose advert came from the agent itself (a live agent). */
  onLive?: (publicKey: Uint8Array) => void;
}

/** A provider as findProviders reports it. */
interface FoundProvider {
  id: PeerId;
  publicKey: Uint8Array;
  multiaddrs: Multiaddr[];
}

/**
 * Finds agents that provide `service` and yields each one's verified advertisement (which must list the
 * service), as soon as it is resolved. Ends when the DHT search ends, `limit` results were yielded, or
 * `timeoutMs` elapsed. Our own advertisement is not yielded.
 *
 * @throws MmogitError `ERR_ABORTED` when the caller's signal fires.
 */
export async function* discoverAdverts(
  ctx: FindContext,
  service: string,
  options: DiscoverOptions = {},
): AsyncIterable<VerifiedAdvertisement> {
  throwIfAborted(options.signal, 'discover');
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return;
  const done = new AbortController();
  const budget = withTimeout(options.signal, options.timeoutMs ?? DISCOVER_TIMEOUT_MS, 'discover');
  const signal = AbortSignal.any([budget, done.signal]);
  const self = ctx.selfKey;
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
  // Preferred agents go first, are resolved before strangers, and hold strangers back for a head start.
  const preferred: FoundProvider[] = [];
  /** preferred agents not yet resolved, and the search's copy of one (its addresses) should it fall through */
  const preferredPending = new Map<string, FoundProvider | undefined>();
  for (const pk of options.prefer ?? []) {
    const hex = Buffer.from(pk).toString('hex');
    if (pk.length !== 32 || preferredPending.has(hex) || Buffer.from(pk).equals(Buffer.from(self))) continue;
    preferredPending.set(hex, undefined);
    preferred.push({ id: peerIdFromPublicKey(publicKeyFromRaw(pk)), publicKey: pk, multiaddrs: [] });
  }
  let preferredOpen = preferred.length;
  let headStart: ReturnType<typeof setTimeout> | undefined;
  const strangersWait = (): boolean => preferredOpen > 0 && headStart !== undefined;
  if (preferred.length > 0)
    headStart = setTimeout(() => {
      headStart = undefined;
      pump();
    }, PREFERRED_HEAD_START_MS);
  /** providers yielded, verified or still being resolved: what `limit` may still get from what we know */
  const inHand = (): number => yielded + ready.length + pending + queue.length + preferred.length;
  const pump = (): void => {
    while (pending < concurrency && !signal.aborted) {
      const isPreferred = preferred.length > 0;
      if (!isPreferred && (queue.length === 0 || strangersWait())) break;
      const p = (isPreferred ? preferred.shift() : queue.shift()) as FoundProvider;
      pending++;
      resolveProvider(ctx, p, service, { signal, settleMs, direct, onLive: options.onLive })
        .then((v) => {
          const hex = Buffer.from(p.publicKey).toString('hex');
          if (isPreferred) {
            // resolved: the search skips it from now; not resolved (its addresses unknown to us, or its first
            // copy an older one): the search's own find of it, if any, is resolved like a stranger's
            const fromSearch = preferredPending.get(hex);
            preferredPending.delete(hex);
            if (v !== null) seen.add(hex);
            else if (fromSearch !== undefined) queue.push(fromSearch);
          }
          // preferred agents jump the line of results not yet yielded
          if (v !== null && isPreferred) ready.unshift(v);
          else if (v !== null) ready.push(v);
          else if (!signal.aborted)
            ctx.log(
              `provider ${Buffer.from(p.publicKey).toString('hex').slice(0, 12)}: no advert for ${service}`,
            );
        })
        .catch(() => {})
        .finally(() => {
          pending--;
          if (isPreferred && --preferredOpen === 0) clearTimeout(headStart);
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
        for await (const e of ctx.dht.findProviders(serviceProviderKey(service), {
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
            if (preferredPending.has(hex)) {
              preferredPending.set(hex, found);
              continue;
            }
            // a provider we are already connected to answers without a dial (over tor: a rendezvous)
            if (direct && ctx.node.getConnections(p.id).length > 0) queue.unshift(found);
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
        if (!searchSignal.aborted) ctx.log(`findProviders ended: ${(e as Error).message}`);
      } finally {
        searching = false;
        notify();
      }
    })();
  };
  pump();
  startSearch();
  try {
    while (yielded < limit) {
      const next = ready.shift();
      if (next !== undefined) {
        yielded++;
        yield next;
        continue;
      }
      if ((!searching && pending === 0 && queue.length === 0 && preferred.length === 0) || signal.aborted)
        break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    clearTimeout(headStart);
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
async function resolveProvider(
  ctx: FindContext,
  p: FoundProvider,
  service: string,
  options: {
    signal: AbortSignal;
    settleMs: number;
    direct: boolean;
    onLive?: ((publicKey: Uint8Array) => void) | undefined;
  },
): Promise<VerifiedAdvertisement | null> {
  const usable = (v: VerifiedAdvertisement | null): VerifiedAdvertisement | null =>
    v?.advert.services.includes(service) ? v : null;
  const fromDht = (signal: AbortSignal): Promise<VerifiedAdvertisement | null> =>
    lookupAdvert(ctx, p.publicKey, { signal, settleMs: options.settleMs }).then(usable, () => null);
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
    fetchAdvert(ctx.node, p.id, p.multiaddrs, {
      signal,
      timeoutMs: ADVERT_FETCH_TIMEOUT_MS,
      now: ctx.now(),
    })
      .then(usable, (e: unknown) => {
        if (!signal.aborted) {
          const reason = (e as MmogitError).details?.reason;
          ctx.log(`direct fetch from ${id} failed: ${reason ?? (e as Error).message}`);
        }
        return null;
      })
      .then((v) => {
        if (v !== null) options.onLive?.(p.publicKey);
        // a miss starts the DHT copy now (before settle, so `open` counts it)
        if (v === null) startDht();
        settle(v);
      });
  });
}
