import type { Socket } from 'node:net';
/**
 * What an agent node is, as its users see it: the options it is created with, the {@link AgentNode} interface,
 * who is on the other end of a connection, and its events. `node.ts` builds one.
 * @module
 */
import type { Connection, Libp2p, PeerId, Stream, StreamHandlerOptions } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { AbortOptions } from '../_async.js';
import type { AgentKey } from '../identity/keys.js';
import type { PendingInboundOptions } from './_inbound-admission.js';
import type { DowngradeEvent, HybridTransport, RouteKind, TransportPolicy } from './hybrid.js';
import type { MeshConnector } from './onion3.js';

/** Who is on the other end of a connection or stream. */
export interface RemoteInfo {
  peerId: PeerId;
  /** Raw 32-byte Ed25519 key (the PeerId's and the onion's). */
  publicKey: Uint8Array;
  /** `<56 chars>.onion` derived from the key: the address this peer is reachable at through tor. */
  onion: string;
  /** The route this connection actually takes (inbound: always as seen here, e.g. tor for our onion). */
  transport: RouteKind;
}

export interface ConnectionInfo extends RemoteInfo {
  direction: 'inbound' | 'outbound';
  remoteAddr: string;
}

export interface AgentNodeOptions {
  /** The agent's identity; the libp2p private key is derived from the same Ed25519 seed. */
  key: AgentKey;
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** The local port the onion service forwards to (0 = pick one; read it back from {@link AgentNode.listenPort}). */
  listenPort?: number;
  /**
   * The onion to announce: `/onion3/<serviceId>:<virtualPort>`. The serviceId must be the key's own. Defaults to
   * the key's onion at {@link DEFAULT_ONION_VIRTUAL_PORT} when the policy uses tor.
   */
  onion?: { serviceId: string; virtualPort: number };
  /** tor's SocksPort; needed to dial onions. */
  socks?: { host: string; port: number };
  /** Default `tor-only`. */
  policy?: TransportPolicy;
  /** Per-peer overrides, keyed by PeerId string or onion address. */
  peerPolicies?: Record<string, TransportPolicy>;
  /** Port of the direct TCP listener when the policy allows direct and an onion listener exists (default 0). */
  directPort?: number;
  /** Extra libp2p services, e.g. `{ dht: kadDHT({...}) }`. */
  // biome-ignore lint/suspicious/noExplicitAny: libp2p service factories take libp2p's Components
  services?: Record<string, (components: any) => unknown>;
  onDowngrade?: (e: DowngradeEvent) => void;
  /** yamux per-stream window sizes (bytes). */
  yamux?: { initialStreamWindowSize?: number; maxStreamWindowSize?: number };
  /** Default port used when a dial target is an onion without `:port`. */
  defaultOnionPort?: number;
  /** Attempts per tor dial (default {@link DEFAULT_TOR_DIAL_ATTEMPTS}). */
  torDialAttempts?: number;
  /**
   * Opens a mesh stream to a peer's onion, for peers whose policy is `mesh-only` or `mesh-then-tor` (the agent
   * passes its `agent.mesh`). Absent: such a dial fails with ERR_TRANSPORT_POLICY, it never goes to tor instead.
   */
  meshConnect?: MeshConnector;
  /**
   * Inbound onion connections before their upgrade ends: pending cap (the oldest is evicted above it), handshake-start
   * and upgrade deadlines (defaults in _inbound-admission.ts: 256, 5 s, 15 s).
   */
  inboundAdmission?: PendingInboundOptions;
}

/** Events of an {@link AgentNode}. */
export interface AgentNodeEvents {
  downgrade: DowngradeEvent;
  'peer:connect': ConnectionInfo;
  'peer:disconnect': { peerId: PeerId; onion: string };
}

/** Handler for inbound streams of one protocol. */
export type AgentStreamHandler = (stream: Stream, remote: RemoteInfo) => void | Promise<void>;

/** A started agent node. */
export interface AgentNode {
  readonly libp2p: Libp2p;
  readonly peerId: PeerId;
  /** Local port tor's onion service must forward to (or the direct listener's port when there is no onion). */
  readonly listenPort: number;
  /** The direct TCP listener's port, when the policy allows direct. */
  readonly directPort: number | undefined;
  readonly policy: TransportPolicy;
  readonly hybrid: HybridTransport;
  /** The addresses this node announces to peers. */
  addresses(): Multiaddr[];
  /**
   * Opens a protocol stream to `target`: an onion (`<id>[.onion][:port]`), a multiaddr, or a PeerId string,
   * following the peer's transport policy. Throws ERR_TRANSPORT_POLICY when the policy refuses the only route.
   */
  dialProtocol(target: string, protocol: string, options?: AbortOptions): Promise<Stream>;
  /**
   * Opens a plain tor stream to another virtual port of a peer's onion (SOCKS5 through the node's tor, with the
   * isolation its libp2p dials to that onion use, so both share one rendezvous circuit). Only for a peer whose
   * policy is `tor-only` (every other policy routes through libp2p's dial): otherwise ERR_TRANSPORT_POLICY.
   * What runs on the stream authenticates the peer itself; the onion address only routes it.
   */
  openOnionStream(onion: string, virtualPort: number, options?: AbortOptions): Promise<Socket>;
  /** Registers a handler for inbound streams; `remote` says who (verified key) and over which route. */
  handle(
    protocol: string,
    handler: AgentStreamHandler,
    options?: Omit<StreamHandlerOptions, 'middleware'>,
  ): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  /** The open connections with their truthful route. */
  connections(): ConnectionInfo[];
  /** The route of one connection. */
  transportOf(connection: Connection): RouteKind;
  /** The route of a stream {@link dialProtocol} opened (undefined for one it did not open). */
  routeOfStream(stream: Stream): RouteKind | undefined;
  on<E extends keyof AgentNodeEvents>(event: E, listener: (e: AgentNodeEvents[E]) => void): AgentNode;
  off<E extends keyof AgentNodeEvents>(event: E, listener: (e: AgentNodeEvents[E]) => void): AgentNode;
  stop(options?: AbortOptions): Promise<void>;
}
