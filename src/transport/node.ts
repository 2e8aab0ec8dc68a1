/**
 * One libp2p node per agent. Its PeerId is the agent's Ed25519 identity key (the same key as its .onion and its
 * signatures); it listens where the agent's onion service forwards to and announces only `/onion3/<id>:<port>`
 * under the default `tor-only` policy. Messaging, memory sync and the DHT are protocols over this one node, so
 * a pair of peers shares one connection: one tor circuit.
 * @module
 */
import '../_polyfill.js';
import { EventEmitter } from 'node:events';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import './_yamux-window.js';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type {
  Connection,
  Libp2p,
  PeerId,
  PrivateKey,
  Stream,
  StreamHandlerOptions,
  Transport,
} from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { createLogger } from '../_log.js';
import { abortReason, type ErrorCode, hasCode, MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import {
  DEFAULT_ONION_VIRTUAL_PORT,
  ed25519KeyOfPeerId,
  onionFromPeerId,
  onionMultiaddr,
  parseTarget,
} from './addr.js';
import { type DowngradeEvent, HybridTransport, routeOf, type TransportPolicy } from './hybrid.js';
import { InboundRegistry, onion3Transport } from './onion3.js';

const log = createLogger('mmogit:transport:node');

/** Whole dialProtocol budget: a cold onion connect is a rendezvous (seconds), plus retries. */
export const DEFAULT_DIAL_TIMEOUT_MS = 90_000;
/** Under tor-then-direct, how long tor gets before the (announced) fallback to direct. */
export const DEFAULT_TOR_PHASE_TIMEOUT_MS = 45_000;
/** Tor dials retried: right after publishing, SOCKS answers "host unreachable" until the descriptor is up. */
export const DEFAULT_TOR_DIAL_ATTEMPTS = 4;
const TOR_RETRY_BASE_MS = 1_000;
/** Dial failures that are answers (policy, identity, protocol), not route faults: never retried. */
const FINAL_DIAL_CODES: readonly ErrorCode[] = ['ERR_TRANSPORT_POLICY', 'ERR_HANDSHAKE', 'ERR_NOT_FOUND'];
const TOR_RETRY_MAX_MS = 8_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** yamux windows: throughput over a path is window ÷ loaded round trip (~0.1–0.2 s through tor on loopback). */
export const DEFAULT_YAMUX_INITIAL_WINDOW = 1024 * 1024;
export const DEFAULT_YAMUX_MAX_WINDOW = 8 * 1024 * 1024;

export type { DowngradeEvent, RouteKind, TransportPolicy } from './hybrid.js';

export interface IoOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Who is on the other end of a connection or stream. */
export interface RemoteInfo {
  peerId: PeerId;
  /** Raw 32-byte Ed25519 key (the PeerId's and the onion's). */
  publicKey: Uint8Array;
  /** `<56 chars>.onion` derived from the key: the address this peer is reachable at through tor. */
  onion: string;
  /** The route this connection actually takes. */
  transport: 'tor' | 'direct';
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
  dialProtocol(target: string, protocol: string, options?: IoOptions): Promise<Stream>;
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
  transportOf(connection: Connection): 'tor' | 'direct';
  on<E extends keyof AgentNodeEvents>(event: E, listener: (e: AgentNodeEvents[E]) => void): AgentNode;
  off<E extends keyof AgentNodeEvents>(event: E, listener: (e: AgentNodeEvents[E]) => void): AgentNode;
  stop(options?: IoOptions): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal, 'dial'));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

function dialError(err: unknown, what: string, signal: AbortSignal): MmogitError {
  if (signal.aborted) return abortReason(signal, what);
  if (err instanceof MmogitError) return err;
  const e = err as Error;
  if (e?.name === 'UnsupportedProtocolError') {
    return new MmogitError('ERR_NOT_FOUND', `${what}: the peer does not support this protocol`, {
      cause: err,
    });
  }
  if (e?.name === 'EncryptionFailedError') {
    // noise could not prove the remote holds the key we dialled (e.g. an onion served by another key)
    return new MmogitError('ERR_HANDSHAKE', `${what}: secure handshake failed: ${e.message}`, { cause: err });
  }
  if (e?.name === 'DialDeniedError' || e?.name === 'ConnectionDeniedError') {
    return new MmogitError('ERR_TRANSPORT_POLICY', `${what}: refused by transport policy (${e.message})`, {
      cause: err,
    });
  }
  const inner =
    e instanceof AggregateError ? e.errors.map((x) => (x as Error).message).join('; ') : e?.message;
  return new MmogitError('ERR_PEER_UNREACHABLE', `${what}: ${inner}`, { cause: err });
}

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
      forwardTo: onionAddr ? { host: listenHost, port: opts.listenPort ?? 0 } : undefined,
      inbound,
      onListening: (port) => {
        onionPort = port;
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
  const libp2p = (await createLibp2p({
    privateKey,
    addresses: {
      listen,
      // tor-only: peers learn only the onion; never a local or observed IP address
      ...(policy === 'tor-only' && onionAddr ? { announce: [onionAddr.toString()] } : {}),
    },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({
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
      maxIncomingPendingConnections: 256,
      dialTimeout: DEFAULT_TOR_PHASE_TIMEOUT_MS,
      addressDialTimeout: DEFAULT_TOR_PHASE_TIMEOUT_MS,
      inboundUpgradeTimeout: 30_000,
      outboundStreamProtocolNegotiationTimeout: 30_000,
      inboundStreamProtocolNegotiationTimeout: 30_000,
    },
    // yamux keep-alive already detects dead peers; the monitor's pings add tor traffic for nothing
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      ...(opts.services ?? {}),
      // biome-ignore lint/suspicious/noExplicitAny: service map typing is libp2p's generic
    } as any,
  })) as unknown as Libp2p;

  const transportOf = (c: Connection): 'tor' | 'direct' => {
    const r = hybrid.routeOfConnection(c.remoteAddr, c.direction);
    return r === 'tor' ? 'tor' : 'direct';
  };
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

  /** Dials a list of addresses (libp2p picks), with retries for tor's not-yet-published descriptors. */
  const dialRoute = async (
    addrs: Multiaddr[],
    protocol: string,
    route: 'tor' | 'direct',
    signal: AbortSignal,
    what: string,
  ): Promise<Stream> => {
    const attempts = route === 'tor' ? Math.max(1, opts.torDialAttempts ?? DEFAULT_TOR_DIAL_ATTEMPTS) : 1;
    let last: MmogitError | undefined;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(Math.min(TOR_RETRY_BASE_MS * 2 ** (i - 1), TOR_RETRY_MAX_MS), signal);
      try {
        return await libp2p.dialProtocol(addrs, protocol, { signal });
      } catch (err) {
        last = dialError(err, what, signal);
        log('%s over %s: attempt %d failed: %s', what, route, i + 1, last.message);
        // policy, identity and "protocol not supported" are answers, not route failures: no retry
        if (signal.aborted || FINAL_DIAL_CODES.some((c) => hasCode(last, c))) throw last;
      }
    }
    throw last as MmogitError;
  };

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
