/**
 * HybridTransport: which route (tor, direct TCP, or a circuit through mesh relays) an agent may use to reach
 * each peer.
 *
 * A policy applies per agent and may be overridden per peer:
 * - `tor-only` (default): only `/onion3` addresses, through tor. No TCP transport is even configured when no
 *   policy allows direct, and the connection gater refuses any non-onion address either way.
 * - `tor-then-direct`: tor first; a direct address is used only after tor failed, and only after a
 *   {@link DowngradeEvent} was emitted (a downgrade is never silent).
 * - `direct-only`: only direct TCP addresses; never tor.
 * - `mesh-only`: the peer's onion through a mesh circuit (docs/mesh.md): the exit relay dials the onion with its
 *   own tor, so the peer's `/onion3` address is kept but the socket is a mesh stream. Never tor, never direct.
 * - `mesh-then-tor`: the mesh first; tor only after the mesh failed, and only after a {@link DowngradeEvent}
 *   `mesh → tor` was emitted.
 *
 * A mesh connection's multiaddr is the peer's onion as for tor, so the route cannot be read from the address:
 * the onion transport marks the remote address object of every connection it carried over the mesh
 * ({@link HybridTransport.markMesh}) and {@link HybridTransport.routeOfConnection} reads the mark.
 * @module
 */
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import { isOnionAddress } from '../identity/onion.js';
import {
  isOnionMultiaddr,
  onionFromPeerId,
  onionOfMultiaddr,
  peerIdFromOnion,
  peerIdOfMultiaddr,
} from './addr.js';
import type { InboundRegistry } from './onion3.js';

const log = createLogger('mmogit:transport:policy');

/** How an agent may reach a peer. */
export type TransportPolicy = 'tor-only' | 'tor-then-direct' | 'direct-only' | 'mesh-only' | 'mesh-then-tor';
/** The route a connection actually takes: through tor, direct TCP, or a mesh circuit to the peer's onion. */
export type RouteKind = 'tor' | 'direct' | 'mesh';

export const TRANSPORT_POLICIES: readonly TransportPolicy[] = [
  'tor-only',
  'tor-then-direct',
  'direct-only',
  'mesh-only',
  'mesh-then-tor',
];
export const DEFAULT_TRANSPORT_POLICY: TransportPolicy = 'tor-only';

/**
 * Emitted before a connection to a peer uses a less preferred route: direct although tor was preferred
 * (`tor-then-direct`), or tor although the mesh was preferred (`mesh-then-tor`).
 */
export interface DowngradeEvent {
  /** The peer's PeerId string. */
  peer: string;
  from: 'tor' | 'mesh';
  to: 'direct' | 'tor';
  /** The multiaddr dialled (outbound) or seen (inbound). */
  multiaddr: string;
  direction: 'outbound' | 'inbound';
  /** Why the preferred route was not used (its dial's error message), when known. */
  reason?: string;
}

/** The route a multiaddr takes: `/onion3` → tor, anything else (ip4/ip6/dns + tcp) → direct. */
export function routeOf(ma: Multiaddr): RouteKind {
  return isOnionMultiaddr(ma) ? 'tor' : 'direct';
}

function checkPolicy(policy: string): TransportPolicy {
  if (!(TRANSPORT_POLICIES as readonly string[]).includes(policy)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `unknown transport policy "${policy}"`, {
      details: { allowed: TRANSPORT_POLICIES },
    });
  }
  return policy as TransportPolicy;
}

/** A peer policy key (PeerId string or onion address) → PeerId string. */
function peerKey(peer: string | PeerId): string {
  if (typeof peer !== 'string') return peer.toString();
  if (isOnionAddress(peer)) return peerIdFromOnion(peer).toString();
  try {
    return peerIdFromString(peer).toString();
  } catch (cause) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `"${peer}" is neither a PeerId nor an onion address`, {
      cause,
    });
  }
}

export interface HybridTransportInit {
  policy?: TransportPolicy;
  /** Keyed by PeerId string or onion address. */
  peerPolicies?: Record<string, TransportPolicy>;
  /** Tells inbound sockets accepted on the onion listener from direct ones. */
  inbound?: InboundRegistry;
  /** Receives every downgrade (the agent node re-emits it as an event). */
  onDowngrade?: (e: DowngradeEvent) => void;
}

/** The policy table and the gate that enforces it on every libp2p dial and connection. */
export class HybridTransport {
  readonly policy: TransportPolicy;
  private readonly peerPolicies = new Map<string, TransportPolicy>();
  /** Peers for which a downgrade was announced and a dial on the fallback route is in progress. */
  private readonly armed = new Map<string, number>();
  /** Remote addresses of connections carried over the mesh (the object, not its text: tor's is the same). */
  private readonly meshAddrs = new WeakSet<Multiaddr>();
  private readonly policyListeners = new Set<(peer: string) => void>();

  constructor(private readonly init: HybridTransportInit = {}) {
    this.policy = checkPolicy(init.policy ?? DEFAULT_TRANSPORT_POLICY);
    for (const [peer, p] of Object.entries(init.peerPolicies ?? {})) this.setPeerPolicy(peer, p);
  }

  /** Sets (or with `undefined` clears) one peer's policy; the key is a PeerId string or an onion. */
  setPeerPolicy(peer: string | PeerId, policy: TransportPolicy | undefined): void {
    const key = peerKey(peer);
    if (policy === undefined) this.peerPolicies.delete(key);
    else this.peerPolicies.set(key, checkPolicy(policy));
    for (const listener of this.policyListeners) {
      try {
        listener(key);
      } catch (err) {
        log('policy listener threw: %s', err);
      }
    }
  }

  /**
   * Calls `listener` with a peer's key (its PeerId string) whenever that peer's policy changes, so the node
   * can close connections the new policy no longer allows: a policy applies to the connections already open,
   * not only to the next dial. Returns the function that removes the listener.
   */
  onPolicyChange(listener: (peer: string) => void): () => void {
    this.policyListeners.add(listener);
    return () => this.policyListeners.delete(listener);
  }

  /** The policy for a peer (its override, else the agent's). */
  policyFor(peer: string | PeerId | undefined): TransportPolicy {
    if (peer === undefined) return this.policy;
    return this.peerPolicies.get(peerKey(peer)) ?? this.policy;
  }

  /** Whether any policy (agent or peer) can ever use a direct route, i.e. whether TCP must be configured. */
  get anyDirect(): boolean {
    const direct = (p: TransportPolicy) => p === 'tor-then-direct' || p === 'direct-only';
    return direct(this.policy) || [...this.peerPolicies.values()].some(direct);
  }

  /** Whether any policy (agent or peer) can use the mesh, i.e. whether onion dials may need a mesh connector. */
  get anyMesh(): boolean {
    const mesh = (p: TransportPolicy) => p === 'mesh-only' || p === 'mesh-then-tor';
    return mesh(this.policy) || [...this.peerPolicies.values()].some(mesh);
  }

  /** Whether `route` to `peer` is allowed right now (a fallback route only while its downgrade is armed). */
  allows(peer: string | PeerId | undefined, route: RouteKind): boolean {
    const policy = this.policyFor(peer);
    const armed = peer !== undefined && this.armed.has(peerKey(peer));
    switch (route) {
      case 'tor':
        if (policy === 'mesh-then-tor') return armed;
        return policy === 'tor-only' || policy === 'tor-then-direct';
      case 'direct':
        if (policy === 'direct-only') return true;
        if (policy === 'tor-then-direct') return armed;
        return false;
      case 'mesh':
        return policy === 'mesh-only' || policy === 'mesh-then-tor';
    }
  }

  /**
   * The route an outbound dial of `onion` takes: the mesh under a mesh policy (unless a `mesh → tor` downgrade
   * is armed), tor otherwise. The onion transport asks this for every dial, libp2p's own (DHT, identify) too.
   */
  onionRouteFor(onion: string): 'tor' | 'mesh' {
    return this.allows(onion, 'mesh') && !this.allows(onion, 'tor') ? 'mesh' : 'tor';
  }

  /** Marks `remoteAddr` (the object a connection keeps) as a connection carried over the mesh. */
  markMesh(remoteAddr: Multiaddr): void {
    this.meshAddrs.add(remoteAddr);
  }

  /**
   * Announces a downgrade to `peer`, then allows dials on the fallback route (direct under `tor-then-direct`,
   * tor under `mesh-then-tor`) until the returned `done()` is called. The event is emitted before any byte is
   * sent on the fallback route.
   */
  beginDowngrade(peer: PeerId, multiaddr: string, reason?: string): () => void {
    const key = peer.toString();
    const policy = this.policyFor(key);
    if (policy !== 'tor-then-direct' && policy !== 'mesh-then-tor') {
      throw new MmogitError('ERR_TRANSPORT_POLICY', `policy for ${key} does not allow a downgrade`);
    }
    const [from, to] =
      policy === 'tor-then-direct' ? (['tor', 'direct'] as const) : (['mesh', 'tor'] as const);
    this.emitDowngrade({ peer: key, from, to, multiaddr, direction: 'outbound', reason });
    this.armed.set(key, (this.armed.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.armed.get(key) ?? 1) - 1;
      if (n <= 0) this.armed.delete(key);
      else this.armed.set(key, n);
    };
  }

  private emitDowngrade(e: DowngradeEvent): void {
    log(
      'DOWNGRADE %s connection to %s: %s → %s via %s (%s)',
      e.direction,
      e.peer,
      e.from,
      e.to,
      e.multiaddr,
      e.reason,
    );
    try {
      this.init.onDowngrade?.(e);
    } catch (err) {
      log('downgrade listener threw: %s', err);
    }
  }

  /** The route an established connection's socket took. */
  routeOfConnection(remoteAddr: Multiaddr, direction: 'inbound' | 'outbound'): RouteKind {
    if (this.meshAddrs.has(remoteAddr)) return 'mesh';
    if (direction === 'outbound') return routeOf(remoteAddr);
    return this.init.inbound?.has(remoteAddr) || isOnionMultiaddr(remoteAddr) ? 'tor' : 'direct';
  }

  /** Throws ERR_TRANSPORT_POLICY unless `route` to `peer` is allowed now. */
  assertAllowed(peer: string | PeerId | undefined, route: RouteKind, what: string): void {
    if (!this.allows(peer, route)) {
      throw new MmogitError(
        'ERR_TRANSPORT_POLICY',
        `${what}: ${route} route refused by policy ${this.policyFor(peer)}${peer ? ` for ${peerKey(peer)}` : ''}`,
        { details: { route, policy: this.policyFor(peer), peer: peer?.toString() } },
      );
    }
  }

  /** A libp2p ConnectionGater enforcing the policy on every dial and on both sides of every handshake. */
  connectionGater(): ConnectionGater {
    const checkPeer = (peerId: PeerId, maConn: MultiaddrConnection, direction: 'inbound' | 'outbound') => {
      // one key for PeerId, onion and signatures: agents are Ed25519 only
      if (peerId.type !== 'Ed25519') return true;
      const route = this.routeOfConnection(maConn.remoteAddr, direction);
      if (direction === 'outbound') {
        const onion = onionOfMultiaddr(maConn.remoteAddr);
        // the onion we dialled must be the key noise just authenticated (rend-spec-v3 §6 binding)
        if (onion && `${onion.serviceId}.onion` !== onionFromPeerId(peerId)) return true;
        return !this.allows(peerId, route);
      }
      // Inbound through our onion service is never less private, whatever our policy: it is the peer's route.
      // (Under a mesh policy our own streams still use a connection we dialled over the mesh: node.ts.)
      if (route === 'tor') return false;
      const policy = this.policyFor(peerId);
      if (policy !== 'tor-then-direct' && policy !== 'direct-only') {
        log('refused inbound direct connection from %s (policy %s)', peerId.toString(), policy);
        return true;
      }
      if (policy === 'tor-then-direct') {
        this.emitDowngrade({
          peer: peerId.toString(),
          from: 'tor',
          to: 'direct',
          multiaddr: maConn.remoteAddr.toString(),
          direction: 'inbound',
          reason: 'peer connected directly',
        });
      }
      return false;
    };
    return {
      denyDialMultiaddr: (ma) => {
        const p2p = peerIdOfMultiaddr(ma);
        const onion = onionOfMultiaddr(ma);
        if (onion && p2p !== undefined && peerIdFromOnion(onion.serviceId).toString() !== p2p) return true;
        // an onion dial under a mesh policy is carried by the mesh (the onion transport asks onionRouteFor)
        const peer = p2p ?? (onion ? `${onion.serviceId}.onion` : undefined);
        const route = onion && peer !== undefined ? this.onionRouteFor(peer) : routeOf(ma);
        const deny = !this.allows(peer, route);
        if (deny) log('gate: refused dial %s (policy %s)', ma.toString(), this.policyFor(p2p));
        return deny;
      },
      denyOutboundEncryptedConnection: (peerId, maConn) => checkPeer(peerId, maConn, 'outbound'),
      denyInboundEncryptedConnection: (peerId, maConn) => checkPeer(peerId, maConn, 'inbound'),
    };
  }
}
