/**
 * A peer's transport policy applies to what is already open, not only to the next dial: when it changes, our
 * outbound connections to that peer on a route the new policy refuses are closed. libp2p's own dials (the
 * DHT's, identify's) may have opened one over tor before the peer was put on the mesh, and libp2p reuses any
 * open connection. Inbound connections are the peer's route and stay (the connection gate's rule).
 * @module
 */
import type { Connection, Libp2p } from '@libp2p/interface';
import { createLogger } from '../_log.js';
import type { HybridTransport, RouteKind } from './hybrid.js';

const log = createLogger('mmogit:transport:policy');

/** Starts the watch; returns the function that ends it. */
export function closeRefusedOnPolicyChange(
  libp2p: Libp2p,
  hybrid: HybridTransport,
  routeOf: (c: Connection) => RouteKind,
): () => void {
  return hybrid.onPolicyChange((peer) => {
    for (const c of libp2p.getConnections()) {
      if (c.direction !== 'outbound' || c.remotePeer.toString() !== peer || c.status !== 'open') continue;
      const route = routeOf(c);
      if (hybrid.allows(peer, route)) continue;
      log('closing %s connection to %s: refused by its new policy', route, peer);
      // abort, not close(): a graceful close first closes the muxer while the socket still reads `open`, and
      // libp2p's dialer reuses any connection whose status is `open`, so the very next dial to this peer got
      // the closing connection and its newStream failed ("muxer is closing"): a send right after the policy
      // change was queued instead of taking the new route.
      c.abort(new Error(`route ${route} refused by the peer's new policy`));
    }
  });
}
