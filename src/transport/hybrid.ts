/**
 * HybridTransport: which route (tor, direct TCP, later a mesh tunnel) an agent may use to reach each peer.
 *
 * A policy applies per agent and may be overridden per peer:
 * - `tor-only` (default): only `/onion3` addresses, through tor. No TCP transport is even configured when no
 *   policy allows direct, and the connection gater refuses any non-onion address either way.
 * - `tor-then-direct`: tor first; a direct address is used only after tor failed, and only after a
 *   {@link DowngradeEvent} was emitted (a downgrade is never silent).
 * - `direct-only`: only direct TCP addresses; never tor.
 *
 * Routes are a closed union with room for `mesh` (a later issue tunnels through other agents): {@link routeOf}
 * is where a mesh multiaddr will be recognised and {@link HybridTransport.allows} where its policy goes.
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
export type TransportPolicy = 'tor-only' | 'tor-then-direct' | 'direct-only';
/** The route a connection actually takes. `mesh` is reserved for the mesh issue; nothing produces it yet. */
export type RouteKind = 'tor' | 'direct' | 'mesh';

export const TRANSPORT_POLICIES: readonly TransportPolicy[] = ['tor-only', 'tor-then-direct', 'direct-only'];
export const DEFAULT_TRANSPORT_POLICY: TransportPolicy = 'tor-only';

/** Emitted before a connection to a peer uses a direct route although tor was preferred. */
export interface DowngradeEvent {
  /** The peer's PeerId string. */
  peer: string;
  from: 'tor';
  to: 'direct';
  /** The direct multiaddr dialled (outbound) or seen (inbound). */
  multiaddr: string;
  direction: 'outbound' | 'inbound';
  /** Why tor was not used (the tor dial's error message), when known. */
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
  /** Peers for which a downgrade was announced and a direct dial is in progress. */
  private readonly armed = new Map<string, number>();

  constructor(private readonly init: HybridTransportInit = {}) {
    this.policy = checkPolicy(init.policy ?? DEFAULT_TRANSPORT_POLICY);
    for (const [peer, p] of Object.entries(init.peerPolicies ?? {})) this.setPeerPolicy(peer, p);
  }

  /** Sets (or with `undefined` clears) one peer's policy; the key is a PeerId string or an onion. */
  setPeerPolicy(peer: string | PeerId, policy: TransportPolicy | undefined): void {
    const key = peerKey(peer);
    if (policy === undefined) this.peerPolicies.delete(key);
    else this.peerPolicies.set(key, checkPolicy(policy));
  }

  /** The policy for a peer (its override, else the agent's). */
  policyFor(peer: string | PeerId | undefined): TransportPolicy {
    if (peer === undefined) return this.policy;
    return this.peerPolicies.get(peerKey(peer)) ?? this.policy;
  }

  /** Whether any policy (agent or peer) can ever use a direct route, i.e. whether TCP must be configured. */
  get anyDirect(): boolean {
    return this.policy !== 'tor-only' || [...this.peerPolicies.values()].some((p) => p !== 'tor-only');
  }

  /** Whether `route` to `peer` is allowed right now (direct under tor-then-direct only while armed). */
  allows(peer: string | PeerId | undefined, route: RouteKind): boolean {
    const policy = this.policyFor(peer);
    switch (route) {
      case 'tor':
        return policy !== 'direct-only';
      case 'direct':
        if (policy === 'direct-only') return true;
        if (policy === 'tor-then-direct') return peer !== undefined && this.armed.has(peerKey(peer));
        return false;
      case 'mesh':
        // the mesh issue decides; until then no policy admits it
        return false;
    }
  }

  /**
   * Announces a downgrade to `peer`, then allows direct dials to it until the returned `done()` is called.
   * The event is emitted before any direct byte is sent.
   */
  beginDowngrade(peer: PeerId, multiaddr: string, reason?: string): () => void {
    const key = peer.toString();
    if (this.policyFor(key) !== 'tor-then-direct') {
      throw new MmogitError('ERR_TRANSPORT_POLICY', `policy for ${key} does not allow a downgrade`);
    }
    this.emitDowngrade({ peer: key, from: 'tor', to: 'direct', multiaddr, direction: 'outbound', reason });
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
      'DOWNGRADE %s connection to %s: tor → direct via %s (%s)',
      e.direction,
      e.peer,
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
      if (route === 'tor') return false; // inbound through our onion service is never less private
      const policy = this.policyFor(peerId);
      if (policy === 'tor-only') {
        log('refused inbound direct connection from %s (policy tor-only)', peerId.toString());
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
        const deny = !this.allows(p2p, routeOf(ma));
        if (deny) log('gate: refused dial %s (policy %s)', ma.toString(), this.policyFor(p2p));
        return deny;
      },
      denyOutboundEncryptedConnection: (peerId, maConn) => checkPeer(peerId, maConn, 'outbound'),
      denyInboundEncryptedConnection: (peerId, maConn) => checkPeer(peerId, maConn, 'inbound'),
    };
  }
}
