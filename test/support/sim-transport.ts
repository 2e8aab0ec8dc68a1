/**
 * Test support (not shipped in src/): a simulated libp2p transport, so hundreds of real libp2p nodes (noise,
 * yamux, identify, our kad-dht and Discovery) share one process without tor or sockets. Connections are
 * in-memory duplex pairs that cost what a tor onion connection costs (test/support/sim-profile.ts): a circuit
 * set-up delay before the dial returns, and a one-way delay with jitter on every write, in order.
 *
 * Addresses are `/ip4/127.0.0.1/tcp/<port>` with ports handed out by the {@link SimNetwork} (no socket is
 * bound; the shape is the one kad-dht and identify already handle on loopback). The delays are drawn from one
 * seeded PRNG per network: the sequence of draws repeats with the seed, the event order (two cores, one event
 * loop) does not, so a run repeats in distribution, not bit for bit.
 * @module
 */
import { Duplex } from 'node:stream';
import {
  type ComponentLogger,
  type Connection,
  type CreateListenerOptions,
  type DialTransportOptions,
  type Listener,
  type ListenerEvents,
  type Transport,
  TypedEventEmitter,
  transportSymbol,
  type Upgrader,
} from '@libp2p/interface';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { MmogitError } from '../../src/errors.js';
import { socketToMaConn } from '../../src/transport/_socket-conn.js';
import { drawOneWay, drawRange, type SimProfile, seededRandom } from './sim-profile.js';

/** First port the network hands out. */
const FIRST_PORT = 20_000;

/** What a network counted (tests check that delays were applied). */
export interface SimStats {
  dials: number;
  coldSetups: number;
  warmSetups: number;
  refused: number;
  writes: number;
  /** Sum and extremes of the drawn set-up and one-way delays, ms. */
  setupMsTotal: number;
  oneWayMsMin: number;
  oneWayMsMax: number;
}

interface SimListener {
  upgrader: Upgrader;
  accept(end: Duplex, remote: Multiaddr): void;
}

/** The shared medium: who listens where, the seeded delays, the counters. */
export class SimNetwork {
  readonly profile: SimProfile;
  readonly seed: number;
  readonly stats: SimStats = {
    dials: 0,
    coldSetups: 0,
    warmSetups: 0,
    refused: 0,
    writes: 0,
    setupMsTotal: 0,
    oneWayMsMin: Number.POSITIVE_INFINITY,
    oneWayMsMax: 0,
  };
  readonly #random: () => number;
  readonly #listeners = new Map<number, SimListener>();
  /** `dialerPort>targetPort` → when the rendezvous circuit was last used (warm connects inside the window). */
  readonly #circuits = new Map<string, number>();
  #nextPort = FIRST_PORT;
  #nextEphemeral = 0;

  constructor(profile: SimProfile, seed: number) {
    this.profile = profile;
    this.seed = seed >>> 0;
    this.#random = seededRandom(this.seed);
  }

  allocatePort(): number {
    if (this.#nextPort > 65_535) throw new MmogitError('ERR_INVALID_ARGUMENT', 'sim network is full');
    return this.#nextPort++;
  }

  /** An inbound connection's remote address: like tor's local end of a connection, it names nobody. */
  ephemeralAddr(): Multiaddr {
    const port = 1024 + (this.#nextEphemeral++ % 18_000);
    return multiaddr(`/ip4/127.0.0.2/tcp/${port}`);
  }

  register(port: number, l: SimListener): void {
    this.#listeners.set(port, l);
  }

  unregister(port: number): void {
    this.#listeners.delete(port);
  }

  listenerAt(port: number): SimListener | undefined {
    return this.#listeners.get(port);
  }

  /** The set-up delay of a dial from `from` to `to` (cold, or warm within the reuse window). */
  setupDelay(from: number, to: number, now = Date.now()): number {
    const key = `${from}>${to}`;
    const last = this.#circuits.get(key);
    const warm = last !== undefined && now - last < this.profile.circuitReuseMs;
    this.#circuits.set(key, now);
    const ms = drawRange(warm ? this.profile.warmSetupMs : this.profile.setupMs, this.#random);
    if (warm) this.stats.warmSetups++;
    else this.stats.coldSetups++;
    this.stats.setupMsTotal += ms;
    return ms;
  }

  oneWay(): number {
    const ms = drawOneWay(this.profile, this.#random);
    this.stats.writes++;
    if (ms < this.stats.oneWayMsMin) this.stats.oneWayMsMin = ms;
    if (ms > this.stats.oneWayMsMax) this.stats.oneWayMsMax = ms;
    return ms;
  }

  /** A connected pair of in-memory ends with this network's one-way delays. */
  pair(): [Duplex, Duplex] {
    const a = new SimEnd(this);
    const b = new SimEnd(this);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }
}

type Delivery = { at: number; chunk: Buffer | null | 'reset' };

/**
 * One end of an in-memory connection. A write is delivered to the peer after a drawn one-way delay, never
 * before an earlier write (FIFO per direction, one timer per direction); `end()` and `destroy()` travel the
 * same way (a FIN, an RST).
 */
class SimEnd extends Duplex {
  peer: SimEnd | undefined;
  readonly #net: SimNetwork;
  readonly #queue: Delivery[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastAt = 0;

  constructor(net: SimNetwork) {
    super({ allowHalfOpen: true });
    this.#net = net;
  }

  #send(chunk: Delivery['chunk']): void {
    const at = Math.max(performance.now() + this.#net.oneWay(), this.#lastAt);
    this.#lastAt = at;
    this.#queue.push({ at, chunk });
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[0];
    if (head === undefined) return;
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, head.at - performance.now()));
  }

  #flush(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#queue.length > 0 && (this.#queue[0] as Delivery).at <= now + 0.5) {
      const { chunk } = this.#queue.shift() as Delivery;
      const peer = this.peer;
      if (peer === undefined || peer.destroyed) {
        this.#queue.length = 0;
        break;
      }
      if (chunk === 'reset') peer.destroy();
      else peer.push(chunk);
    }
    this.#arm();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#send(Buffer.from(chunk));
    cb();
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.#send(null);
    cb();
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    // the reset still travels to the peer (after what was written before it)
    if (this.peer !== undefined && !this.peer.destroyed) this.#send('reset');
    cb(error);
  }
}

/** Waits `ms`, or rejects with the signal's reason. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The port of a `/ip4/127.0.0.1/tcp/<port>[/p2p/…]` address, or undefined. */
function portOf(ma: Multiaddr): number | undefined {
  const [ip, tcp, ...rest] = ma.getComponents();
  if (ip?.name !== 'ip4' || ip.value !== '127.0.0.1' || tcp?.name !== 'tcp') return undefined;
  if (rest.some((c) => c.name !== 'p2p')) return undefined;
  const port = Number(tcp.value);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

interface SimComponents {
  logger: ComponentLogger;
}

class SimTransport implements Transport {
  readonly [transportSymbol] = true as const;
  readonly [Symbol.toStringTag] = '@mmogit/sim';
  /** This node's listening port (its dials' source, for warm circuits). */
  port: number | undefined;

  constructor(
    private readonly components: SimComponents,
    private readonly net: SimNetwork,
  ) {}

  async dial(ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const to = portOf(ma);
    if (to === undefined) throw new MmogitError('ERR_INVALID_MULTIADDR', `not a sim address: ${ma}`);
    this.net.stats.dials++;
    // the rendezvous happens before the first byte; an onion nobody serves fails only after it too
    await delay(this.net.setupDelay(this.port ?? 0, to), options.signal);
    const listener = this.net.listenerAt(to);
    if (listener === undefined) {
      this.net.stats.refused++;
      throw new MmogitError('ERR_SOCKS', `sim: nobody listens at ${ma}`);
    }
    const [mine, theirs] = this.net.pair();
    listener.accept(theirs, this.net.ephemeralAddr());
    const maConn = socketToMaConn({
      socket: mine,
      remoteAddr: ma,
      direction: 'outbound',
      log: this.components.logger.forComponent('mmogit:sim:connection'),
    });
    try {
      return await options.upgrader.upgradeOutbound(maConn, options);
    } catch (err) {
      maConn.abort(err as Error);
      throw err;
    }
  }

  createListener(options: CreateListenerOptions): Listener {
    return new SimTransportListener(this, this.net, options.upgrader, this.components.logger);
  }

  listenFilter = (multiaddrs: Multiaddr[]): Multiaddr[] =>
    multiaddrs.filter((m) => portOf(m) !== undefined || m.toString() === '/ip4/127.0.0.1/tcp/0');

  dialFilter = (multiaddrs: Multiaddr[]): Multiaddr[] => multiaddrs.filter((m) => portOf(m) !== undefined);
}

class SimTransportListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  #port: number | undefined;
  readonly #open = new Set<Duplex>();

  constructor(
    private readonly transport: SimTransport,
    private readonly net: SimNetwork,
    readonly upgrader: Upgrader,
    private readonly logger: ComponentLogger,
  ) {
    super();
  }

  accept(end: Duplex, remote: Multiaddr): void {
    this.#open.add(end);
    end.once('close', () => this.#open.delete(end));
    const maConn = socketToMaConn({
      socket: end,
      remoteAddr: remote,
      direction: 'inbound',
      log: this.logger.forComponent('mmogit:sim:connection'),
    });
    // the same bound an onion listener gives an inbound upgrade (src/transport/_inbound-admission.ts)
    this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.timeout(60_000) }).catch((err: Error) => {
      maConn.abort(err);
    });
  }

  async listen(ma: Multiaddr): Promise<void> {
    const asked = portOf(ma);
    const port = asked ?? this.net.allocatePort();
    if (this.net.listenerAt(port) !== undefined)
      throw new MmogitError('ERR_INVALID_ARGUMENT', `sim port ${port} is taken`);
    this.#port = port;
    this.transport.port = port;
    this.net.register(port, this);
    this.safeDispatchEvent('listening');
  }

  getAddrs(): Multiaddr[] {
    return this.#port === undefined ? [] : [multiaddr(`/ip4/127.0.0.1/tcp/${this.#port}`)];
  }

  updateAnnounceAddrs(): void {}

  async close(): Promise<void> {
    if (this.#port !== undefined) this.net.unregister(this.#port);
    for (const end of this.#open) end.destroy();
    this.#open.clear();
    this.safeDispatchEvent('close');
  }
}

/**
 * The transport factory for `createLibp2p({ transports: [simTransport(net)], addresses: { listen:
 * ['/ip4/127.0.0.1/tcp/0'] } })`.
 */
export function simTransport(net: SimNetwork): (components: SimComponents) => Transport {
  return (components) => new SimTransport(components, net);
}
