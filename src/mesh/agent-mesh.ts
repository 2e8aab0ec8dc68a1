/**
 * `agent.mesh`: the mesh bound to one agent. It relays with the agent's key (on TCP with `listen`, and on the
 * agent's onion as libp2p protocol {@link MESH_PROTOCOL} once the agent is started), advertises `mesh_relay`
 * with its descriptor in the agent's signed advert, and opens client meshes whose onion links go through a
 * throwaway libp2p identity over the agent's tor (the guard never learns which agent is the client). Its route
 * mesh carries the agent's own connections to peers whose transport policy is `mesh-only` or `mesh-then-tor`
 * (src/transport/hybrid.ts): a stream to the peer's onion through a circuit whose exit dials that onion.
 * Everything heavy is imported lazily: an agent that never uses the mesh never loads it.
 * @module
 */
import { join } from 'node:path';
import type { Stream } from '@libp2p/interface';
import type { AgentKey } from '../identity/keys.js';
import type { RelayInfo } from './circuit.js';
import type { ExitPolicy } from './exit-policy.js';
import type { OnionChannelDialer } from './link.js';
import type { Mesh, MeshOptions } from './mesh.js';
import type { MeshMetrics } from './metrics.js';
import type { Relay, RelayHooks } from './relay.js';

/** The slice of a started agent the mesh uses (structural: the mesh does not import the agent layer). */
export interface MeshHostRuntime {
  readonly tor: { readonly socksHost: string; readonly socksPort: number };
  readonly node: {
    handle(
      protocol: string,
      handler: (stream: Stream) => void | Promise<void>,
      options?: { maxInboundStreams?: number; maxOutboundStreams?: number },
    ): Promise<void>;
    unhandle(protocol: string): Promise<void>;
    dialProtocol(
      target: string,
      protocol: string,
      options?: { signal?: AbortSignal; timeoutMs?: number },
    ): Promise<Stream>;
  };
  readonly discovery: {
    readonly current?: { advert: { services: string[] } } | undefined;
    advertise(services: string[], options?: Record<string, unknown>): Promise<unknown>;
    discover(
      service: string,
      options?: Record<string, unknown>,
    ): AsyncIterable<{ advert: { onion: string; pubkey: string; card: unknown } }>;
  };
}

export interface AgentMeshHost {
  key: AgentKey;
  configDir: string;
  /** The started runtime, or null (then only TCP links and exits work). */
  runtime(): MeshHostRuntime | null;
}

export interface RelayStartOptions {
  /** `host:port` for plain TCP links (port 0: any). */
  listen?: { host: string; port: number };
  exitPolicy?: ExitPolicy;
  family?: string[];
  intervalMs?: number;
  /** Advertise `mesh_relay` in the DHT (default: when the agent is started). */
  advertise?: boolean;
  /** Address to put in the descriptor instead of the bound one (a public IP behind NAT). */
  publicAddr?: { host: string; port: number };
  hooks?: RelayHooks;
  /** Observes every target this relay opens as an exit (tests: what an exit learns, and that it carried). */
  onBegin?: (target: { host: string; port: number }, allowed: boolean) => void;
}

/** A running relay and what it advertises. */
export interface RelayHandle {
  readonly relay: Relay;
  readonly onion: string;
  readonly pubkey: string;
  readonly listen: { host: string; port: number } | null;
  readonly onionReachable: boolean;
  /** `onion@host:port` (or the bare onion): what `--relay` takes. */
  readonly spec: string;
  readonly exits: string[];
  stop(): Promise<void>;
}

/** Bound on one `mesh` route connect (a circuit build if none is up, then the exit's onion connect). */
const ROUTE_CONNECT_TIMEOUT_MS = 120_000;

/** The mesh of one agent. */
export class AgentMesh {
  readonly #host: AgentMeshHost;
  #relay: RelayHandle | null = null;
  readonly #clients = new Set<Mesh>();
  #ephemeral: Promise<{ dialer: OnionChannelDialer; stop: () => Promise<void> }> | null = null;
  #metrics: MeshMetrics | undefined;
  /** The client mesh of the `mesh` transport route (built on first use unless set). */
  #route: Promise<Mesh> | null = null;
  #routeOptions: Omit<MeshOptions, 'configDir' | 'onionDialer' | 'discover'> = {};

  constructor(host: AgentMeshHost) {
    this.#host = host;
  }

  /** Client meshes made from now on count into `metrics` (the daemon serves its registry with the agent's). */
  useMetrics(metrics: MeshMetrics): void {
    this.#metrics = metrics;
  }

  get relayHandle(): RelayHandle | null {
    return this.#relay;
  }

  /** Starts relaying (once per agent). */
  async relay(options: RelayStartOptions = {}): Promise<RelayHandle> {
    if (this.#relay) return this.#relay;
    const [
      { Relay },
      { MESH_PROTOCOL, MESH_PROTOCOL_VERSION },
      { channelFromStream },
      { describePolicy, DEFAULT_EXIT_POLICY },
      descriptor,
    ] = await Promise.all([
      import('./relay.js'),
      import('./_wire.js'),
      import('../transport/stream-channel.js'),
      import('./exit-policy.js'),
      import('./descriptor.js'),
    ]);
    const runtime = this.#host.runtime();
    const policy = options.exitPolicy ?? DEFAULT_EXIT_POLICY;
    const relay = new Relay({
      key: this.#host.key,
      exitPolicy: policy,
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
      ...(options.hooks ? { hooks: options.hooks } : {}),
      ...(options.onBegin ? { onBegin: options.onBegin } : {}),
      ...(runtime
        ? {
            onionDialer: (onion: string, o: { signal: AbortSignal }) =>
              dialOnionLink(
                () => runtime.node.dialProtocol(onion, MESH_PROTOCOL, { signal: o.signal }),
                o.signal,
                channelFromStream,
              ),
            onionConnect: async (host: string, port: number, o: { signal: AbortSignal }) => {
              const { dialOnion } = await import('../tor/socks.js');
              return dialOnion(
                {
                  socksHost: runtime.tor.socksHost,
                  socksPort: runtime.tor.socksPort,
                  onion: host,
                  port,
                  retry: {},
                },
                { signal: o.signal },
              );
            },
          }
        : {}),
    });
    let listen: { host: string; port: number } | null = null;
    try {
      if (options.listen) listen = await relay.listen(options.listen.host, options.listen.port);
      if (runtime) {
        await runtime.node.handle(MESH_PROTOCOL, (stream) => relay.acceptChannel(channelFromStream(stream)), {
          maxInboundStreams: 1024,
          maxOutboundStreams: 1024,
        });
      }
    } catch (e) {
      await relay.close();
      throw e;
    }
    // without tor this relay cannot reach onions: do not advertise what it would refuse
    const exits = describePolicy(runtime ? policy : { ...policy, onionPorts: [] });
    const shown = options.publicAddr ?? listen;
    const desc = {
      version: MESH_PROTOCOL_VERSION,
      addrs: shown ? [`tcp:${shown.host.includes(':') ? `[${shown.host}]` : shown.host}:${shown.port}`] : [],
      exits,
      family: options.family ?? [],
    };
    if (runtime && options.advertise !== false) {
      const services = new Set(runtime.discovery.current?.advert.services ?? []);
      services.add(descriptor.MESH_RELAY_SERVICE);
      await runtime.discovery.advertise([...services], { extensions: [descriptor.relayExtension(desc)] });
    }
    const key = this.#host.key;
    const handle: RelayHandle = {
      relay,
      onion: key.onion,
      pubkey: key.publicKeyHex,
      listen,
      onionReachable: runtime !== null,
      spec: shown ? `${key.onion}@${desc.addrs[0]?.slice(4)}` : key.onion,
      exits,
      stop: async () => {
        this.#relay = null;
        if (runtime) await runtime.node.unhandle(MESH_PROTOCOL).catch(() => {});
        await relay.close();
      },
    };
    this.#relay = handle;
    return handle;
  }

  /**
   * A client mesh: its reputation in this agent's config dir; relays from `options.relays` and, when the agent
   * is started, from the DHT (`mesh_relay` adverts, verified) and reachable by onion.
   */
  async client(options: Omit<MeshOptions, 'configDir' | 'onionDialer' | 'discover'> = {}): Promise<Mesh> {
    const [{ Mesh }, { relayFromAdvert, MESH_RELAY_SERVICE }] = await Promise.all([
      import('./mesh.js'),
      import('./descriptor.js'),
    ]);
    const runtime = this.#host.runtime();
    const needsOnion = Boolean(runtime);
    const mesh = new Mesh({
      ...(this.#metrics ? { metrics: this.#metrics } : {}),
      ...options,
      configDir: this.#host.configDir,
      ...(needsOnion ? { onionDialer: await this.#onionDialer() } : {}),
      ...(runtime
        ? {
            discover: async (signal: AbortSignal) => {
              const found: RelayInfo[] = [];
              for await (const ad of runtime.discovery.discover(MESH_RELAY_SERVICE, {
                signal,
                timeoutMs: 20_000,
                limit: 32,
              })) {
                if (ad.advert.onion === this.#host.key.onion) continue;
                const r = relayFromAdvert(ad.advert);
                if (r) found.push(r);
              }
              return found;
            },
          }
        : {}),
    });
    this.#clients.add(mesh);
    return mesh;
  }

  /**
   * Sets what the `mesh` transport route uses: a client mesh made here (`client()`) or the options of one made on
   * first use (default: 3 hops, relays from the DHT). A route mesh built before is closed.
   */
  async useForRoutes(
    meshOrOptions: Mesh | Omit<MeshOptions, 'configDir' | 'onionDialer' | 'discover'>,
  ): Promise<void> {
    const old = this.#route;
    if ('connect' in meshOrOptions && typeof meshOrOptions.connect === 'function') {
      this.#route = Promise.resolve(meshOrOptions as Mesh);
    } else {
      this.#routeOptions = meshOrOptions as Omit<MeshOptions, 'configDir' | 'onionDialer' | 'discover'>;
      this.#route = null;
    }
    const previous = old ? await old.catch(() => null) : null;
    if (previous && previous !== (await this.#route)) {
      this.#clients.delete(previous);
      await previous.close();
    }
  }

  /** The client mesh of the `mesh` route (made on first use). */
  routeMesh(): Promise<Mesh> {
    this.#route ??= this.client(this.#routeOptions);
    const made = this.#route;
    // a failed build is not kept: the next dial tries again
    made.catch(() => {
      if (this.#route === made) this.#route = null;
    });
    return made;
  }

  /**
   * The `mesh` transport route: a stream to `<onion>:<port>` (a peer agent) through the route mesh; the exit
   * dials the onion with its own tor. The agent's libp2p node runs its usual upgrade (noise, yamux) on it.
   */
  async connectRoute(
    onion: string,
    port: number,
    options: { signal: AbortSignal },
  ): Promise<import('./streams.js').MeshStream> {
    const mesh = await this.routeMesh();
    return mesh.connect(`${onion}:${port}`, { signal: options.signal, timeoutMs: ROUTE_CONNECT_TIMEOUT_MS });
  }

  /** A throwaway libp2p node over the agent's tor, for onion links that do not reveal this agent. */
  #onionDialer(): Promise<OnionChannelDialer> {
    const runtime = this.#host.runtime();
    if (!runtime) throw new Error('unreachable: no runtime');
    this.#ephemeral ??= (async () => {
      const [{ createAgentNode }, { AgentKey }, { MESH_PROTOCOL }, { channelFromStream }] = await Promise.all(
        [
          import('../transport/node.js'),
          import('../identity/keys.js'),
          import('./_wire.js'),
          import('../transport/stream-channel.js'),
        ],
      );
      const node = await createAgentNode({
        key: AgentKey.random(),
        socks: { host: runtime.tor.socksHost, port: runtime.tor.socksPort },
        policy: 'tor-only',
      });
      return {
        dialer: (onion: string, o: { signal: AbortSignal }) =>
          dialOnionLink(
            () => node.dialProtocol(onion, MESH_PROTOCOL, { signal: o.signal }),
            o.signal,
            channelFromStream,
          ),
        stop: () => node.stop(),
      };
    })();
    return this.#ephemeral.then((e) => e.dialer);
  }

  /** Stops the relay, every client mesh and the throwaway node. */
  async close(): Promise<void> {
    this.#route = null;
    await this.#relay?.stop();
    for (const m of this.#clients) await m.close();
    this.#clients.clear();
    const e = this.#ephemeral;
    this.#ephemeral = null;
    if (e) await (await e).stop().catch(() => {});
  }
}

/**
 * Dials a relay's onion, retrying while tor cannot reach it yet (a fresh onion's descriptor takes seconds to
 * tens of seconds to appear), until `signal` (the hop's build deadline) fires.
 */
async function dialOnionLink<S>(
  dial: () => Promise<S>,
  signal: AbortSignal,
  wrap: (s: S) => import('../transport/byte-channel.js').ByteChannel,
): Promise<import('../transport/byte-channel.js').ByteChannel> {
  const { retry } = await import('../_async.js');
  const stream = await retry(
    () => dial(),
    { attempts: 100, baseDelayMs: 1_000, maxDelayMs: 5_000 },
    {
      signal,
      what: 'mesh onion link',
      retryable: (e) =>
        (e as { code?: string }).code === 'ERR_PEER_UNREACHABLE' ||
        (e as { code?: string }).code === 'ERR_SOCKS',
    },
  );
  return wrap(stream);
}

/** Where a mesh process keeps its state file (`mmogit mesh stop` finds it there). */
export function meshStatePath(configDir: string): string {
  return join(configDir, 'mesh.json');
}
