/**
 * A libp2p transport for `/onion3/<56 chars>:<port>` multiaddrs. Dials go through tor's SOCKS5 port (the
 * destination `<id>.onion` is resolved by tor, never by us); the listener binds the local TCP port that the
 * agent's onion service forwards to (`ADD_ONION Port=<virt>,127.0.0.1:<port>`, control-spec §3.27) and reports the
 * onion multiaddr as its address. Sockets are upgraded by libp2p (noise, then yamux) like @libp2p/tcp's. A dial
 * that the transport policy routes over the mesh gets its byte stream from a mesh circuit whose exit reaches the
 * onion instead (docs/mesh.md); the upgrade on top is the same.
 * @module
 */
import '../_polyfill.js';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type ComponentLogger,
  type Connection,
  type CreateListenerOptions,
  type DialTransportOptions,
  type Listener,
  type ListenerEvents,
  type Logger,
  TimeoutError,
  type Transport,
  TypedEventEmitter,
  transportSymbol,
} from '@libp2p/interface';
import { ipPortToMultiaddr } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import { MmogitError } from '../errors.js';
import { DEFAULT_SOCKS_TIMEOUT_MS, socksConnect } from '../tor/socks.js';
import { PendingInbound, type PendingInboundOptions } from './_inbound-admission.js';
import { OnionIsolation } from './_onion-isolation.js';
import { socketToMaConn } from './_socket-conn.js';
import { isOnionMultiaddr, onionOfMultiaddr, peerIdFromOnion } from './addr.js';

/** Opens a byte stream to `<onion>:<port>` through a mesh circuit (the exit dials the onion). */
export type MeshConnector = (
  onion: string,
  port: number,
  options: { signal: AbortSignal },
) => Promise<Duplex>;

/** How onion dials are routed when a policy can use the mesh. */
export interface OnionMeshRouting {
  /** The route of a dial to `onion`, asked at every dial. */
  routeFor(onion: string): 'tor' | 'mesh';
  /** Absent: a dial routed to the mesh fails with ERR_TRANSPORT_POLICY (never tor instead). */
  connect?: MeshConnector | undefined;
  /** Marks a connection's remote address as carried over the mesh (its route is read from the mark). */
  markMesh(remoteAddr: Multiaddr): void;
}

/** Where tor's SocksPort is. */
export interface SocksEndpoint {
  host: string;
  port: number;
}

/** Remembers which inbound sockets came in through the onion listener, so a connection's route is truthful. */
export class InboundRegistry {
  private readonly viaTor = new Set<string>();
  add(host: string, port: number): void {
    this.viaTor.add(`${host}:${port}`);
  }
  delete(host: string, port: number): void {
    this.viaTor.delete(`${host}:${port}`);
  }
  /** True when an inbound connection's remote address is a socket accepted on the onion listener. */
  has(remoteAddr: Multiaddr): boolean {
    const [ip, tcp] = remoteAddr.getComponents();
    return ip?.value !== undefined && tcp?.name === 'tcp' && this.viaTor.has(`${ip.value}:${tcp.value}`);
  }
}

export interface Onion3TransportInit {
  /** tor's SocksPort; without it the transport cannot dial (listening still works). */
  socks?: SocksEndpoint;
  /** Local address the onion service forwards to; the listener binds it (port 0 = any free port). */
  forwardTo?: { host: string; port: number };
  /** Bound on the SOCKS connect (the cold rendezvous dominates); libp2p's dial signal still applies. */
  connectTimeoutMs?: number;
  /** Shared with the agent node to classify inbound connections. */
  inbound?: InboundRegistry;
  /** Called once the listener is bound, with the actual local port. */
  onListening?: (port: number) => void;
  /** Mesh routing of outbound dials; absent: every dial goes through tor. */
  mesh?: OnionMeshRouting;
  /** Inbound admission: pending cap and deadlines (defaults in _inbound-admission.ts). */
  inboundAdmission?: PendingInboundOptions;
  /**
   * The SOCKS isolation keys of dialled onions, shared with the node's other tor streams to the same peer
   * (AgentNode.openOnionStream) so they ride the same rendezvous circuit. Absent: one of its own.
   */
  isolation?: OnionIsolation;
}

interface Onion3Components {
  logger: ComponentLogger;
}

class Onion3Transport implements Transport {
  readonly [transportSymbol] = true as const;
  readonly [Symbol.toStringTag] = '@mmogit/onion3';
  private readonly log: Logger;
  private readonly isolation: OnionIsolation;

  constructor(
    private readonly components: Onion3Components,
    private readonly init: Onion3TransportInit,
  ) {
    this.log = components.logger.forComponent('mmogit:transport:onion3');
    this.isolation = init.isolation ?? new OnionIsolation();
  }

  async dial(ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const onion = onionOfMultiaddr(ma);
    if (!onion) throw new MmogitError('ERR_INVALID_MULTIADDR', `not an onion3 multiaddr: ${ma.toString()}`);
    const mesh = this.init.mesh;
    if (mesh && mesh.routeFor(`${onion.serviceId}.onion`) === 'mesh')
      return this.dialMesh(ma, onion, mesh, options);
    const socks = this.init.socks;
    if (!socks) {
      throw new MmogitError('ERR_SOCKS', 'cannot dial an onion: no tor SocksPort configured');
    }
    this.log('dialing %s through socks %s:%d', ma.toString(), socks.host, socks.port);
    let socket: net.Socket;
    try {
      socket = await socksConnect(
        {
          socksHost: socks.host,
          socksPort: socks.port,
          host: `${onion.serviceId}.onion`,
          port: onion.port,
          // one circuit per destination onion: peers do not share circuits (tor IsolateSOCKSAuth); a new
          // isolation after a failed dial, so the next one does not wait on a dead rendezvous (_onion-isolation.ts)
          isolationKey: this.isolation.key(onion.serviceId),
        },
        { signal: options.signal, timeoutMs: this.init.connectTimeoutMs ?? DEFAULT_SOCKS_TIMEOUT_MS },
      );
    } catch (e) {
      this.isolation.failed(onion.serviceId);
      throw e;
    }
    return this.upgradeOutbound(socket, ma, options);
  }

  /** The same upgrade over a mesh stream to the onion; its remote address is marked as a mesh route. */
  private async dialMesh(
    ma: Multiaddr,
    onion: { serviceId: string; port: number },
    mesh: OnionMeshRouting,
    options: DialTransportOptions,
  ): Promise<Connection> {
    if (!mesh.connect) {
      throw new MmogitError(
        'ERR_TRANSPORT_POLICY',
        `${ma.toString()}: the policy routes over the mesh, and no mesh is set up`,
      );
    }
    this.log('dialing %s through the mesh', ma.toString());
    const stream = await mesh.connect(`${onion.serviceId}.onion`, onion.port, { signal: options.signal });
    // the connection keeps this very object as its remote address only when it names the peer already
    const hasPeer = ma.getComponents().some((c) => c.name === 'p2p');
    const remoteAddr = hasPeer ? ma : ma.encapsulate(`/p2p/${peerIdFromOnion(onion.serviceId).toString()}`);
    mesh.markMesh(remoteAddr);
    return this.upgradeOutbound(stream, remoteAddr, options);
  }

  /** libp2p's outbound upgrade (noise, yamux) over an open byte stream, which is aborted if it fails. */
  private async upgradeOutbound(
    socket: Parameters<typeof socketToMaConn>[0]['socket'],
    remoteAddr: Multiaddr,
    options: DialTransportOptions,
  ): Promise<Connection> {
    const maConn = socketToMaConn({
      socket,
      remoteAddr,
      direction: 'outbound',
      log: this.log.newScope('connection'),
    });
    try {
      return await options.upgrader.upgradeOutbound(maConn, options);
    } catch (err) {
      maConn.abort(err as Error);
      throw err;
    }
  }

  createListener(options: CreateListenerOptions): Listener {
    return new Onion3Listener(this.init, options, this.log.newScope('listener'), this.components.logger);
  }

  listenFilter = (multiaddrs: Multiaddr[]): Multiaddr[] =>
    this.init.forwardTo ? multiaddrs.filter(isOnionMultiaddr) : [];

  dialFilter = (multiaddrs: Multiaddr[]): Multiaddr[] => multiaddrs.filter(isOnionMultiaddr);
}

class Onion3Listener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /**
   * The inbound upgrades in flight, each with its own AbortController (aborted when it is dropped or by
   * {@link close}). libp2p's upgrader adds an abort listener (any-signal) to the signal it is given for as long
   * as the upgrade runs: one shared listener-wide signal collected a listener per pending connection, so a flood
   * of half-open connections passed Node's limit of 10 (MaxListenersExceededWarning). Admission (handshake-start
   * deadline, pending cap, oldest evicted first) is _inbound-admission.ts's job.
   */
  private readonly pending: PendingInbound;
  private addr: Multiaddr | undefined;

  constructor(
    private readonly init: Onion3TransportInit,
    private readonly options: CreateListenerOptions,
    private readonly log: Logger,
    private readonly logger: ComponentLogger,
  ) {
    super();
    this.pending = new PendingInbound({
      ...init.inboundAdmission,
      onEvict: (reason) => {
        this.log('inbound connection dropped before its upgrade ended: %s', reason);
        init.inboundAdmission?.onEvict?.(reason);
      },
    });
    this.server = net.createServer({ noDelay: true }, (socket) => this.onSocket(socket));
    this.server.on('error', (err) => this.safeDispatchEvent('error', { detail: err }));
  }

  private onSocket(socket: net.Socket): void {
    const host = socket.remoteAddress;
    const port = socket.remotePort;
    if (host === undefined || port === undefined || this.addr === undefined) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.init.inbound?.add(host, port);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.init.inbound?.delete(host, port);
    });
    // The remote of an inbound onion connection is anonymous: all we truthfully know is tor's local socket.
    const maConn = socketToMaConn({
      socket,
      remoteAddr: ipPortToMultiaddr(host, port),
      direction: 'inbound',
      log: this.logger.forComponent('mmogit:transport:onion3:connection'),
    });
    const upgrade = new AbortController();
    const slot = this.pending.admit((reason) => {
      const err = new TimeoutError(`inbound connection dropped before its upgrade ended (${reason})`);
      upgrade.abort(err);
      maConn.abort(err);
    });
    const onData = (buf: Buffer) => slot.received(buf.length);
    socket.on('data', onData);
    this.options.upgrader
      .upgradeInbound(maConn, { signal: upgrade.signal })
      .catch((err: Error) => {
        this.log('inbound upgrade failed: %s', err.message);
        maConn.abort(err);
      })
      .finally(() => {
        socket.off('data', onData);
        slot.release();
      });
  }

  async listen(ma: Multiaddr): Promise<void> {
    const forwardTo = this.init.forwardTo;
    if (!forwardTo) throw new MmogitError('ERR_INVALID_ARGUMENT', 'onion3 listener needs forwardTo');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: forwardTo.host, port: forwardTo.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.addr = ma;
    const bound = this.server.address() as net.AddressInfo;
    this.log('listening on %s:%d for %s', bound.address, bound.port, ma.toString());
    this.init.onListening?.(bound.port);
    this.safeDispatchEvent('listening');
  }

  getAddrs(): Multiaddr[] {
    return this.addr ? [this.addr] : [];
  }

  updateAnnounceAddrs(): void {}

  async close(): Promise<void> {
    this.pending.clear();
    const closed = this.server.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.safeDispatchEvent('close');
  }
}

/**
 * The `/onion3` transport factory for `createLibp2p({ transports: [onion3Transport({...})] })`.
 *
 * @example
 * transports: [onion3Transport({ socks: { host: '127.0.0.1', port: 9050 }, forwardTo: { host: '127.0.0.1', port: 0 } })]
 */
export function onion3Transport(init: Onion3TransportInit): (components: Onion3Components) => Transport {
  return (components) => new Onion3Transport(components, init);
}
