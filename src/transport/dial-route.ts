/**
 * One route's dial of a protocol stream: libp2p dials the addresses (it picks one), tor dials are retried for
 * onion descriptors that are not published yet, and a connection that cannot open a stream is aborted so the
 * next attempt dials afresh. The route policy (which routes, in which order) is node.ts's job.
 * @module
 */
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { type RetryPolicy, retry } from '../_async.js';
import { createLogger } from '../_log.js';
import { hasCode, MmogitError } from '../errors.js';
import { dialError, FINAL_DIAL_CODES } from './dial-errors.js';
import type { RouteKind } from './hybrid.js';

const log = createLogger('mmogit:transport:node');

/** Tor dials retried: right after publishing, SOCKS answers "host unreachable" until the descriptor is up. */
export const DEFAULT_TOR_DIAL_ATTEMPTS = 4;
/** How a tor dial is retried (`attempts` is the node's `torDialAttempts`). */
const TOR_DIAL_RETRY: RetryPolicy = {
  attempts: DEFAULT_TOR_DIAL_ATTEMPTS,
  baseDelayMs: 1_000,
  maxDelayMs: 8_000,
};

/** What {@link dialRoute} needs from the node. */
export interface DialRouteDeps {
  libp2p: Libp2p;
  /** The route a connection takes (tor, direct or mesh). */
  transportOf(c: Connection): RouteKind;
  /** Records the route of each stream opened (the node's `routeOfStream`). */
  streamRoutes: WeakMap<Stream, RouteKind>;
  /** Tor dial attempts (default {@link DEFAULT_TOR_DIAL_ATTEMPTS}). */
  torDialAttempts?: number | undefined;
}

/**
 * Dials a list of addresses over one route and opens a `protocol` stream, with retries for tor's
 * not-yet-published descriptors. Over the mesh, only a connection that was itself dialled over the mesh carries
 * the stream: an open one is reused, else a new one is forced (libp2p would otherwise reuse any connection to the
 * peer, e.g. its inbound one through tor, and the route would silently not be the mesh).
 *
 * @throws the typed dial error ({@link dialError}); policy, identity and "protocol not supported" are not retried.
 */
export function dialRoute(
  deps: DialRouteDeps,
  addrs: Multiaddr[],
  protocol: string,
  route: RouteKind,
  signal: AbortSignal,
  what: string,
  peer?: PeerId,
): Promise<Stream> {
  const { libp2p, transportOf } = deps;
  const attempts = route === 'tor' ? Math.max(1, deps.torDialAttempts ?? DEFAULT_TOR_DIAL_ATTEMPTS) : 1;
  return retry(
    async (n) => {
      try {
        const open =
          route === 'mesh' && peer
            ? libp2p.getConnections(peer).find((c) => c.status === 'open' && transportOf(c) === 'mesh')
            : undefined;
        const conn =
          open ?? (await libp2p.dial(addrs, { signal, ...(route === 'mesh' ? { force: true } : {}) }));
        const taken = transportOf(conn);
        if (route === 'mesh' && taken !== 'mesh') {
          throw new MmogitError(
            'ERR_TRANSPORT_POLICY',
            `${what}: the connection is not a mesh route (${taken})`,
          );
        }
        let stream: Stream;
        try {
          stream = await conn.newStream(protocol, { signal });
        } catch (err) {
          // A connection that cannot open a stream (no answer to the protocol offer in time, muxer gone) is
          // dead or dying: a peer that restarted behind tor leaves its old connection looking open for tens of
          // seconds, and libp2p hands any open connection to the next dial, so every retry met the same dead
          // one. Aborted, the next attempt dials afresh. "Protocol not supported" is the peer's answer.
          if ((err as Error)?.name !== 'UnsupportedProtocolError' && conn.status === 'open') {
            log(
              '%s: aborting the connection that could not open a stream: %s',
              what,
              (err as Error)?.message,
            );
            conn.abort(err instanceof Error ? err : new Error(String(err)));
          }
          throw err;
        }
        deps.streamRoutes.set(stream, taken);
        return stream;
      } catch (err) {
        const e = dialError(err, what, signal);
        log('%s over %s: attempt %d failed: %s', what, route, n, e.message);
        throw e;
      }
    },
    { ...TOR_DIAL_RETRY, attempts },
    // policy, identity and "protocol not supported" are answers, not route faults: no retry
    { signal, what, retryable: (e) => !FINAL_DIAL_CODES.some((c) => hasCode(e, c)) },
  );
}
