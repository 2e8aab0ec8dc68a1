/**
 * One libp2p node per agent. Its PeerId is the agent's Ed25519 identity key (the same key as its .onion and its
 * signatures); it listens where the agent's onion service forwards to and announces only `/onion3/<id>:<port>`
 * under the default `tor-only` policy. Messaging, memory sync and the DHT are protocols over this one node, so
 * a pair of peers shares one connection: one tor circuit.
 * @module
 */
import '../_polyfill.js';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { Connection, Libp2p, PeerId, PrivateKey, Stream, Transport } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { createLogger } from '../_log.js';
import { abortReason, hasCode, MmogitError, withTimeout } from '../errors.js';
import { DEFAULT_SOCKS_TIMEOUT_MS, SocksError, socksConnect } from '../tor/socks.js';
import { INBOUND_UPGRADE_TIMEOUT_MS, MAX_PENDING_INBOUND } from './_inbound-admission.js';
import { quietNoise } from './_noise-decoder.js';
import { OnionIsolation } from './_onion-isolation.js';
import { halfWindowYamux } from './_yamux-window.js';
import {
  DEFAULT_ONION_VIRTUAL_PORT,
  ed25519KeyOfPeerId,
  onionFromPeerId,
  onionMultiaddr,
  parseTarget,
} from './addr.js';
import { FINAL_DIAL_CODES } from './dial-errors.js';
import { type DialRouteDeps, dialRoute as dialVia } from './dial-route.js';
import { HybridTransport, type RouteKind, routeOf } from './hybrid.js';
import type { AgentNode, AgentNodeOptions, ConnectionInfo, RemoteInfo } from './node-types.js';
import { InboundRegistry, onion3Transport } from './onion3.js';
import { closeRefusedOnPolicyChange } from './policy-watch.js';

const log = createLogger('mmogit:transport:node');

/** Whole dialProtocol budget: a cold onion connect is a rendezvous (seconds), plus retries. */
export const DEFAULT_DIAL_TIMEOUT_MS = 90_000;
/** Under tor-then-direct, how long tor gets before the (announced) fallback to direct. */
export const DEFAULT_TOR_PHASE_TIMEOUT_MS = 45_000;
/** Under mesh-then-tor, how long the mesh gets (a circuit build, then the exit's onion connect) before tor. */
export const DEFAULT_MESH_PHASE_TIMEOUT_MS = 60_000;
export { DEFAULT_TOR_DIAL_ATTEMPTS } from './dial-route.js';
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** yamux windows: throughput over a path is window ÷ loaded round trip (~0.1–0.2 s through tor on loopback). */
export const DEFAULT_YAMUX_INITIAL_WINDOW = 1024 * 1024;
export const DEFAULT_YAMUX_MAX_WINDOW = 8 * 1024 * 1024;

export type { DowngradeEvent, RouteKind, TransportPolicy } from './hybrid.js';

export type {
  AgentNode,
  AgentNodeEvents,
  AgentNodeOptions,
  AgentStreamHandler,
  ConnectionInfo,
  RemoteInfo,
} from './node-types.js';

/**
 * Creates and starts an agent's libp2p node.
 *
 * @example
 * const node = await createAgentNode({ key, socks: { host: '127.0.0.1', port: socksPort } });
 * await publishOnion(control, key, { virtualPort: 4001, target: node.listenPort });
 * const stream = await node.dialProtocol(peerOnion, '/mmogit/msg/1.0.0');
 */
export async function createAgentNode(opts: AgentNodeOptions): Promise<AgentNode> {
  const listenHost = opts.listenHost ?? '127.0.0.1';
  const events = new EventEmitter();
  const inbound = new InboundRegistry();
  const isolation = new OnionIsolation();
  const hybrid = new HybridTransport({
    policy: opts.policy,
    peerPolicies: opts.peerPolicies,
    inbound,
    onDowngrade: (e) => {
      opts.onDowngrade?.(e);
      events.emit('downgrade', e);
    },
  });
  const policy = hybrid.policy;
  const key = opts.key;

  let onion = opts.onion;
  if (onion && onion.serviceId.replace(/\.onion$/, '') !== key.serviceId) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', "onion.serviceId must be the agent key's own onion", {
      details: { expected: key.serviceId },
    });
  }
  if (!onion && policy !== 'direct-only') {
    onion = { serviceId: key.serviceId, virtualPort: DEFAULT_ONION_VIRTUAL_PORT };
  }
  const onionAddr = onion ? onionMultiaddr(key.onion, onion.virtualPort) : undefined;
  const defaultPort = opts.defaultOnionPort ?? DEFAULT_ONION_VIRTUAL_PORT;

  let onionPort: number | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: libp2p transport factories take libp2p's Components
  const transports: Array<(components: any) => Transport> = [
    onion3Transport({
      socks: opts.socks,
      isolation,
      forwardTo: onionAddr ? { host: listenHost, port: opts.listenPort ?? 0 } : undefined,
      inbound,
      ...(opts.inboundAdmission ? { inboundAdmission: opts.inboundAdmission } : {}),
      onListening: (port) => {
        onionPort = port;
      },
      // asked at every dial: a peer policy set later (setPeerPolicy) routes that peer's next dial
      mesh: {
        routeFor: (o) => hybrid.onionRouteFor(o),
        connect: opts.meshConnect,
        markMesh: (ma) => hybrid.markMesh(ma),
      },
    }),
  ];
  // No TCP transport at all unless some policy can use a direct route: tor-only cannot bypass tor.
  if (hybrid.anyDirect) transports.push(tcp());

  const listen: string[] = [];
  if (onionAddr) listen.push(onionAddr.toString());
  const directListen = policy !== 'tor-only';
  if (directListen) {
    const port = onionAddr ? (opts.directPort ?? 0) : (opts.listenPort ?? 0);
    listen.push(`/ip4/${listenHost}/tcp/${port}`);
  }

  const seed = key.exportSeed();
  let privateKey: PrivateKey;
  try {
    privateKey = await generateKeyPairFromSeed('Ed25519', seed);
  } finally {
    seed.fill(0);
  }

  const maxWindow = opts.yamux?.maxStreamWindowSize ?? DEFAULT_YAMUX_MAX_WINDOW;
  const libp2p: Libp2p = await createLibp2p({
    privateKey,
    addresses: {
      listen,
      // tor-only: peers learn only the onion; never a local or observed IP address
      ...(policy === 'tor-only' && onionAddr ? { announce: [onionAddr.toString()] } : {}),
    },
    transports,
    connectionEncrypters: [quietNoise()],
    streamMuxers: [
      halfWindowYamux({
        streamOptions: {
          initialStreamWindowSize: opts.yamux?.initialStreamWindowSize ?? DEFAULT_YAMUX_INITIAL_WINDOW,
          maxStreamWindowSize: maxWindow,
          // a paused stream still receives up to one window: the read buffer must hold it or yamux resets
          maxReadBufferLength: 2 * maxWindow,
        },
      }),
    ],
    connectionGater: hybrid.connectionGater(),
    connectionManager: {
      // behind tor every inbound connection comes from 127.0.0.1: the per-host defaults refuse peers
      inboundConnectionThreshold: 10_000,
      // The onion listener admits at most MAX_PENDING_INBOUND and evicts the oldest above that
      // (_inbound-admission.ts): libp2p's own cap, which refuses newcomers, must never be the one reached. An
      // evicted upgrade frees libp2p's count only once its promise settles, a tick or more after the newcomer
      // was counted: twice ours leaves room for that and for a direct listener's pending upgrades.
      maxIncomingPendingConnections: 2 * (opts.inboundAdmission?.maxPending ?? MAX_PENDING_INBOUND),
      dialTimeout: DEFAULT_TOR_PHASE_TIMEOUT_MS,
      addressDialTimeout: DEFAULT_TOR_PHASE_TIMEOUT_MS,
      inboundUpgradeTimeout: opts.inboundAdmission?.upgradeTimeoutMs ?? INBOUND_UPGRADE_TIMEOUT_MS,
      outboundStreamProtocolNegotiationTimeout: 30_000,
      inboundStreamProtocolNegotiationTimeout: 30_000,
    },
    // Off to spare tor traffic. Note that yamux's keep-alive pings but never closes a connection whose ping
    // fails, so a dead connection stays open (and reused by every dial) until its socket closes
    // (docs/reliability.md, "The receive defect").
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      ...(opts.services ?? {}),
      // biome-ignore lint/suspicious/noExplicitAny: service map typing is libp2p's generic
    } as any,
  });

  const transportOf = (c: Connection): RouteKind => hybrid.routeOfConnection(c.remoteAddr, c.direction);
  /** The route of each stream this node opened (the connection it was opened on). */
  const streamRoutes = new WeakMap<Stream, RouteKind>();
  const remoteOf = (c: Connection): RemoteInfo => ({
    peerId: c.remotePeer,
    publicKey: ed25519KeyOfPeerId(c.remotePeer),
    onion: onionFromPeerId(c.remotePeer),
    transport: transportOf(c),
  });
  const infoOf = (c: Connection): ConnectionInfo => ({
    ...remoteOf(c),
    direction: c.direction,
    remoteAddr: c.remoteAddr.toString(),
  });

  const stopPolicyWatch = closeRefusedOnPolicyChange(libp2p, hybrid, transportOf);
  // The same rule for the plain tor streams of openOnionStream: ours to a peer whose new policy refuses tor close.
  const onionStreams = new Map<string, Set<Socket>>();
  const stopStreamWatch = hybrid.onPolicyChange((peer) => {
    if (hybrid.allows(peer, 'tor')) return;
    for (const s of onionStreams.get(peer) ?? [])
      s.destroy(new Error("route tor refused by the peer's new policy"));
  });

  libp2p.addEventListener('connection:open', (evt) => {
    const c = evt.detail;
    if (c.remotePeer.type !== 'Ed25519') return;
    const info = infoOf(c);
    log('%s connection %s %s via %s', c.direction, info.peerId.toString(), info.transport, info.remoteAddr);
    events.emit('peer:connect', info);
  });
  libp2p.addEventListener('peer:disconnect', (evt) => {
    const peerId = evt.detail;
    if (peerId.type !== 'Ed25519') return;
    events.emit('peer:disconnect', { peerId, onion: onionFromPeerId(peerId) });
  });

  const directPort = (): number | undefined => {
    if (!directListen) return undefined;
    for (const ma of libp2p.getMultiaddrs()) {
      const [, t] = ma.getComponents();
      if (routeOf(ma) === 'direct' && t?.name === 'tcp') return Number(t.value);
    }
    return undefined;
  };
  const listenPort = onionAddr ? onionPort : directPort();
  if (listenPort === undefined) {
    await libp2p.stop();
    throw new MmogitError('ERR_INTERNAL', 'agent node started without a listening port');
  }

  const routeDeps: DialRouteDeps = {
    libp2p,
    transportOf,
    streamRoutes,
    torDialAttempts: opts.torDialAttempts,
  };
  const dialRoute = (
    addrs: Multiaddr[],
    protocol: string,
    route: RouteKind,
    signal: AbortSignal,
    what: string,
    peer?: PeerId,
  ): Promise<Stream> => dialVia(routeDeps, addrs, protocol, route, signal, what, peer);

  const peerAddrs = async (peer: PeerId): Promise<Multiaddr[]> => {
    try {
      const p = await libp2p.peerStore.get(peer);
      return p.addresses.map((a) => a.multiaddr.encapsulate(`/p2p/${peer}`));
    } catch {
      return [];
    }
  };

  const node: AgentNode = {
    libp2p,
    peerId: libp2p.peerId,
    listenPort,
    get directPort() {
      return directPort();
    },
    policy,
    hybrid,
    addresses: () => libp2p.getMultiaddrs(),

    async dialProtocol(target, protocol, options = {}) {
      const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
      const what = `dial ${target} ${protocol}`;
      const signal = withTimeout(options.signal, timeoutMs, what);
      const t = parseTarget(target, defaultPort);
      const peer = t.peerId;
      if (peer?.equals(libp2p.peerId)) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `${what}: that is this agent itself`);
      }
      const peerPolicy = hybrid.policyFor(peer);

      // Candidate routes: what the target names, plus what the peer store knows about the peer.
      const known = peer ? await peerAddrs(peer) : [];
      const tor: Multiaddr[] = t.kind === 'onion' ? [t.multiaddr] : known.filter((m) => routeOf(m) === 'tor');
      const direct: Multiaddr[] =
        t.kind === 'multiaddr' ? [t.multiaddr] : known.filter((m) => routeOf(m) === 'direct');
      if (peer && tor.length === 0 && t.kind !== 'onion') {
        tor.push(onionMultiaddr(onionFromPeerId(peer), defaultPort, peer.toString()));
      }

      if (peerPolicy === 'direct-only') {
        hybrid.assertAllowed(peer, t.kind === 'onion' ? 'tor' : 'direct', what);
        if (direct.length === 0) {
          throw new MmogitError(
            'ERR_PEER_UNREACHABLE',
            `${what}: no direct address known (policy direct-only)`,
          );
        }
        return dialRoute(direct, protocol, 'direct', signal, what);
      }
      if (peerPolicy === 'tor-only') {
        // refuse before any byte leaves: an explicit direct address under tor-only is a policy error
        if (t.kind === 'multiaddr') hybrid.assertAllowed(peer, 'direct', what);
        return dialRoute(tor, protocol, 'tor', signal, what);
      }
      if (peerPolicy === 'mesh-only' || peerPolicy === 'mesh-then-tor') {
        // the peer's onion, carried by a mesh circuit (the onion transport routes it); never a direct address
        if (t.kind === 'multiaddr' || !peer) hybrid.assertAllowed(peer, 'direct', what);
        const target = peer as PeerId;
        if (peerPolicy === 'mesh-only') return dialRoute(tor, protocol, 'mesh', signal, what, target);
        const meshSignal = withTimeout(
          signal,
          Math.min(DEFAULT_MESH_PHASE_TIMEOUT_MS, timeoutMs),
          `${what} over the mesh`,
        );
        let meshError: MmogitError;
        try {
          return await dialRoute(tor, protocol, 'mesh', meshSignal, what, target);
        } catch (err) {
          meshError = err as MmogitError;
          if (signal.aborted) throw err;
          if (FINAL_DIAL_CODES.some((c) => hasCode(err, c)) && !meshSignal.aborted) throw err;
        }
        // announced before any byte goes to tor (mesh-then-tor's fallback is never silent)
        const release = hybrid.beginDowngrade(target, tor[0]!.toString(), meshError.message);
        try {
          return await dialRoute(tor, protocol, 'tor', signal, what);
        } finally {
          release();
        }
      }
      // tor-then-direct
      if (!peer) {
        throw new MmogitError(
          'ERR_TRANSPORT_POLICY',
          `${what}: under tor-then-direct a direct address needs /p2p/<peerId> so tor can be tried first`,
        );
      }
      const torSignal =
        direct.length > 0
          ? withTimeout(signal, Math.min(DEFAULT_TOR_PHASE_TIMEOUT_MS, timeoutMs), `${what} over tor`)
          : signal;
      let torError: MmogitError;
      try {
        return await dialRoute(tor, protocol, 'tor', torSignal, what);
      } catch (err) {
        torError = err as MmogitError;
        // identity, protocol and policy answers are not route faults: never downgrade on them (only on tor
        // failing to reach the peer, including the tor phase running out of time)
        if (signal.aborted || direct.length === 0) throw err;
        if (FINAL_DIAL_CODES.some((c) => hasCode(err, c)) && !torSignal.aborted) throw err;
      }
      const release = hybrid.beginDowngrade(peer, direct[0]!.toString(), torError.message);
      try {
        return await dialRoute(direct, protocol, 'direct', signal, what);
      } finally {
        release();
      }
    },

    routeOfStream: (stream) => streamRoutes.get(stream),

    async openOnionStream(onion, virtualPort, options = {}) {
      const what = `tor stream to ${onion}:${virtualPort}`;
      const t = parseTarget(onion, virtualPort);
      if (t.kind !== 'onion' || !t.peerId) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `${what}: not an onion address`);
      }
      if (t.peerId.equals(libp2p.peerId)) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `${what}: that is this agent itself`);
      }
      if (hybrid.policyFor(t.peerId) !== 'tor-only') {
        throw new MmogitError(
          'ERR_TRANSPORT_POLICY',
          `${what}: the peer's policy routes through libp2p's dial`,
        );
      }
      if (!opts.socks) throw new MmogitError('ERR_SOCKS', `${what}: no tor SocksPort configured`);
      const serviceId = onionFromPeerId(t.peerId).replace(/\.onion$/, '');
      try {
        const socket = await socksConnect(
          {
            socksHost: opts.socks.host,
            socksPort: opts.socks.port,
            host: `${serviceId}.onion`,
            port: virtualPort,
            isolationKey: isolation.key(serviceId),
          },
          {
            ...(options.signal ? { signal: options.signal } : {}),
            timeoutMs: options.timeoutMs ?? DEFAULT_SOCKS_TIMEOUT_MS,
          },
        );
        socket.setNoDelay(true);
        const peer = t.peerId.toString();
        const set = onionStreams.get(peer) ?? new Set<Socket>();
        onionStreams.set(peer, set);
        set.add(socket);
        socket.once('close', () => {
          set.delete(socket);
          if (set.size === 0 && onionStreams.get(peer) === set) onionStreams.delete(peer);
        });
        return socket;
      } catch (e) {
        // reply 5 (connection refused, RFC 1928 §6): the onion answered that it has no such port, which is the
        // peer's answer, not a dead rendezvous: keep the warm circuits for it
        if (!(e instanceof SocksError && e.reply === 5)) isolation.failed(serviceId);
        throw e;
      }
    },

    async handle(protocol, handler, options) {
      await libp2p.handle(
        protocol,
        async (stream, connection) => {
          let remote: RemoteInfo;
          try {
            remote = remoteOf(connection);
          } catch (err) {
            stream.abort(err as Error);
            return;
          }
          try {
            await handler(stream, remote);
          } catch (err) {
            log('handler for %s failed: %s', protocol, err);
            stream.abort(err instanceof Error ? err : new Error(String(err)));
          }
        },
        options,
      );
    },

    async unhandle(protocol) {
      await libp2p.unhandle(protocol);
    },

    connections: () =>
      libp2p
        .getConnections()
        .filter((c) => c.remotePeer.type === 'Ed25519')
        .map(infoOf),
    transportOf,

    on(event, listener) {
      events.on(event, listener as (e: unknown) => void);
      return node;
    },
    off(event, listener) {
      events.off(event, listener as (e: unknown) => void);
      return node;
    },

    async stop(options = {}) {
      stopPolicyWatch();
      stopStreamWatch();
      for (const set of onionStreams.values()) for (const s of set) s.destroy();
      const signal = withTimeout(
        options.signal,
        options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
        'agent node stop',
      );
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(abortReason(signal, 'agent node stop'));
        signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        await Promise.race([libp2p.stop(), aborted]);
      } finally {
        if (onAbort) signal.removeEventListener('abort', onAbort);
        events.removeAllListeners();
      }
    },
  };
  return node;
}
