import '../_polyfill.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kadDHT } from '@libp2p/kad-dht';
import { createLogger } from '../_log.js';
import { bootstrapDialer } from '../discovery/bootstrap.js';
import { dhtServiceOptions } from '../discovery/dht.js';
import { Discovery, type DiscoveryNode } from '../discovery/discovery.js';
import { MmogitError, withTimeout } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import { CONFIG_FILES } from '../identity/store.js';
import type { MemoryStore } from '../memory/store.js';
import { attachTor, startTor, type TorHandle } from '../tor/daemon.js';
import { DEFAULT_ONION_VIRTUAL_PORT, type OnionService, publishOnion } from '../tor/onion-service.js';
import { loadNetwork, type TorNetworkInfo } from '../tor/testnet.js';
import { TRANSPORT_POLICIES, type TransportPolicy } from '../transport/hybrid.js';
import { type AgentNode, createAgentNode } from '../transport/node.js';
import type { Agent } from './agent.js';
import { Messenger, type PingResult, type ReceivedMessage, type SendResult } from './messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from './messaging-adapters.js';
import { registerSync, SYNC_PROTOCOL, syncWithPeer } from './sync.js';

export type { TransportPolicy };

/**
 * The network side of a started {@link Agent}: tor, the onion service, the libp2p node and the protocols on it
 * (messaging, DHT discovery, memory sync). Built by {@link startRuntime}; reached with `agent.net()`.
 */

const log = createLogger('mmogit:agent');

export const DEFAULT_AGENT_START_TIMEOUT_MS = 180_000;
/** Bootstrap rounds before giving up (each dials every bootstrap address with its own retries). */
const BOOTSTRAP_ROUNDS = 6;
/** How long advertise/discover wait for the DHT bootstrap before going ahead with what the node knows. */
const BOOTSTRAP_WAIT_MS = 30_000;

/** Progress of `Agent.start()`, for the CLI's stderr display. */
export type AgentProgress =
  | { phase: 'tor'; progress: number; summary: string; warning?: string }
  | { phase: 'onion'; state: 'publishing' | 'published'; ms?: number; uploadMs?: number }
  | { phase: 'node'; listenPort: number }
  | { phase: 'dht'; state: 'bootstrapping' | 'ready' | 'no-peers'; connected?: number }
  | { phase: 'ready'; onion: string };

export interface AgentStartOptions {
  /** A private Tor network dir (`network.json`), e.g. from `mmogit testnet up`. Default `$MMOGIT_TOR_NETWORK`. */
  network?: string;
  /** Attach to a running tor (`host:port` or a control socket path) instead of spawning one. */
  torControl?: string;
  torPassword?: string;
  useBridges?: boolean;
  bridges?: string[];
  /** Transport policy (default `tor-only`; config.json may set it). */
  policy?: TransportPolicy;
  /** Per-peer policies keyed by onion. */
  peerPolicies?: Record<string, TransportPolicy>;
  /** Accept peers without the post-quantum channel. Default false. */
  allowClassical?: boolean;
  /** DHT bootstrap multiaddrs (`/onion3/…/p2p/…`), added to config.json's and the network's. */
  bootstrap?: string[];
  /** Use the network's bootstrap agents (default true; the bootstrap agents themselves turn it off). */
  networkBootstrap?: boolean;
  /** Fixed local port for the libp2p listener (default: any free port). */
  listenPort?: number;
  onProgress?: (p: AgentProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** `<configDir>/config.json` (all optional). */
export interface AgentConfig {
  policy?: TransportPolicy;
  peerPolicies?: Record<string, TransportPolicy>;
  bootstrap?: string[];
  bridges?: string[];
  /** Peers `mmogit sync` uses when none are named. */
  syncPeers?: string[];
  allowClassical?: boolean;
}

export interface RuntimeStatus {
  bootstrap: number;
  socksPort: number;
  controlPort: number | undefined;
  onionPort: number;
  listenPort: number;
  policy: TransportPolicy;
  torMode: 'spawn' | 'attach';
  peers: { onion: string; transport: string; direction: string }[];
  outbox: number;
  events: { at: string; type: string; detail: string }[];
}

export interface DiscoverProgressEvent extends Record<string, unknown> {
  phase: 'discover';
}

export interface SyncPeerResult {
  peer: string;
  sent: number;
  received: number;
  head: string | null;
  ms: number;
  error?: { code: string; message: string };
}

export interface AgentRuntime {
  readonly tor: TorHandle;
  readonly node: AgentNode;
  readonly onion: OnionService;
  readonly messenger: Messenger;
  readonly discovery: Discovery;
  status(): RuntimeStatus;
  send(onion: string, text: string, options?: { signal?: AbortSignal }): Promise<SendResult>;
  inbox(options?: { limit?: number | undefined }): Promise<ReceivedMessage[]>;
  connect(onion: string, options?: { signal?: AbortSignal }): Promise<PingResult>;
  advertise(
    services: string[],
    options?: { ttlMs?: number | undefined; signal?: AbortSignal },
  ): Promise<Record<string, unknown>>;
  discover(
    service: string,
    options?: {
      signal?: AbortSignal;
      timeoutMs?: number;
      limit?: number;
      onProgress?: (e: Record<string, unknown>) => void;
    },
  ): AsyncIterable<DiscoveredAgent>;
  syncMany(
    peers: string[],
    options?: {
      signal?: AbortSignal;
      timeoutMs?: number | undefined;
      onProgress?: (e: Record<string, unknown>) => void;
    },
  ): Promise<SyncPeerResult[]>;
  stop(): Promise<void>;
}

/** A discovery result as the CLI and SDK show it (always verified: unverified records never get here). */
export interface DiscoveredAgent {
  onion: string;
  pubkey: string;
  services: string[];
  issuedAt: string;
  expiresAt: string;
  addrs: string[];
  name: string;
  verified: true;
}

/** Reads `<configDir>/config.json`; a missing file is an empty config, a malformed one a typed error. */
export async function loadAgentConfig(configDir: string): Promise<AgentConfig> {
  const path = join(configDir, CONFIG_FILES.config);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path} is not valid JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path} must hold a JSON object`);
  }
  const c = parsed as AgentConfig;
  if (c.policy !== undefined && !TRANSPORT_POLICIES.includes(c.policy)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: unknown policy "${String(c.policy)}"`);
  }
  return c;
}

function checkPolicy(policy: string | undefined): TransportPolicy | undefined {
  if (policy === undefined) return undefined;
  if (!(TRANSPORT_POLICIES as readonly string[]).includes(policy)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `unknown transport policy "${policy}"`, {
      details: { allowed: TRANSPORT_POLICIES },
    });
  }
  return policy as TransportPolicy;
}

/** Starts the agent's network side. On any failure everything started so far is stopped again. */
export async function startRuntime(
  agent: Agent,
  store: MemoryStore,
  options: AgentStartOptions,
): Promise<AgentRuntime> {
  const signal = withTimeout(
    options.signal,
    options.timeoutMs ?? DEFAULT_AGENT_START_TIMEOUT_MS,
    'agent start',
  );
  const config = await loadAgentConfig(agent.configDir);
  const policy = checkPolicy(options.policy) ?? config.policy ?? 'tor-only';
  const allowClassical = options.allowClassical ?? config.allowClassical ?? false;
  const networkDir = options.network ?? process.env.MMOGIT_TOR_NETWORK;
  const network: TorNetworkInfo | undefined = networkDir ? await loadNetwork(networkDir) : undefined;
  const events: RuntimeStatus['events'] = [];
  const record = (type: string, detail: string) => {
    events.push({ at: new Date().toISOString(), type, detail });
    if (events.length > 50) events.shift();
    agent.emit('event', { type, detail });
  };
  let lastBootstrap = 0;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await fn().catch((e) => log('cleanup: %s', e instanceof Error ? e.message : String(e)));
    }
  };

  try {
    // 1. tor: spawned (default) or the user's own.
    const onTorProgress = (p: { progress: number; summary: string; warning?: string }) => {
      lastBootstrap = p.progress;
      options.onProgress?.({
        phase: 'tor',
        progress: p.progress,
        summary: p.summary,
        ...(p.warning ? { warning: p.warning } : {}),
      });
    };
    const tor: TorHandle = options.torControl
      ? await attachTor({
          control: options.torControl,
          ...(options.torPassword ? { password: options.torPassword } : {}),
          onProgress: onTorProgress,
          signal,
        })
      : await startTor({
          dataDir: join(agent.configDir, CONFIG_FILES.tor),
          ...(network ? { network } : {}),
          ...(options.useBridges ? { useBridges: true } : {}),
          ...((options.bridges ?? config.bridges) ? { bridges: options.bridges ?? config.bridges } : {}),
          onProgress: onTorProgress,
          signal,
        });
    lastBootstrap = 100;
    cleanups.push(() => tor.stop());
    tor.on('died', (e) => record('tor-died', `code ${e.code} signal ${e.signal}; restart: ${e.willRestart}`));
    tor.on('restarted', (e) =>
      record(
        'tor-restarted',
        `attempt ${e.attempt}, pid ${e.pid}, republished ${e.republished.length} onion(s)`,
      ),
    );
    tor.on('restart-failed', (e) => record('tor-restart-failed', e.message));

    // 2. the libp2p node, listening on 127.0.0.1 where the onion service forwards to.
    const peerPolicies = { ...config.peerPolicies, ...options.peerPolicies };
    const node = await createAgentNode({
      key: agent.key,
      ...(options.listenPort !== undefined ? { listenPort: options.listenPort } : {}),
      onion: { serviceId: agent.key.serviceId, virtualPort: DEFAULT_ONION_VIRTUAL_PORT },
      socks: { host: tor.socksHost, port: tor.socksPort },
      policy,
      ...(Object.keys(peerPolicies).length > 0 ? { peerPolicies } : {}),
      services: { dht: kadDHT(dhtServiceOptions()) },
      onDowngrade: (e) => {
        record('downgrade', `${e.direction} ${e.peer} via ${e.multiaddr}: ${e.reason ?? 'tor failed'}`);
        process.stderr.write(`mmogit: WARNING: connection to ${e.peer} is not using tor (${e.multiaddr})\n`);
      },
    });
    cleanups.push(() => node.stop());
    options.onProgress?.({ phase: 'node', listenPort: node.listenPort });

    // 3. the onion service: the agent's own key, published before anyone is told the agent is up.
    options.onProgress?.({ phase: 'onion', state: 'publishing' });
    const onion = await publishOnion(tor, agent.key, {
      targetPort: node.listenPort,
      virtualPort: DEFAULT_ONION_VIRTUAL_PORT,
      waitForUpload: true,
      signal,
    });
    cleanups.push(() => onion.remove().catch(() => {}));
    const timings = onion as OnionService & { publishMs?: number; uploadMs?: number };
    options.onProgress?.({
      phase: 'onion',
      state: 'published',
      ...(timings.publishMs !== undefined ? { ms: Math.round(timings.publishMs) } : {}),
      ...(timings.uploadMs !== undefined ? { uploadMs: Math.round(timings.uploadMs) } : {}),
    });

    // 4. messaging (retries the persisted outbox at once).
    const messenger = new Messenger({
      node: messagingNodeFromAgentNode(node),
      key: agent.key,
      store: messageStoreFromMemory(store, {
        journalPath: join(agent.configDir, 'messages.journal'),
        onError: (e) => record('store-error', e instanceof Error ? e.message : String(e)),
      }),
      outboxDir: join(agent.configDir, CONFIG_FILES.outbox),
      allowClassical,
    });
    messenger.on('message', (m: ReceivedMessage) => agent.emit('message', m));
    messenger.on('delivered', (e) => agent.emit('delivered', e));
    messenger.on('queued', (e) => agent.emit('queued', e));
    messenger.on('error', (e) => record('messaging-error', e instanceof Error ? e.message : String(e)));
    await messenger.start();
    cleanups.push(() => messenger.stop());

    // 5. discovery, with bootstrap dialing in the background (the agent is usable before the DHT is).
    const discovery = new Discovery(node.libp2p as unknown as DiscoveryNode, agent.key, {
      onPublish: (r) => {
        if ('error' in r) record('advertise-failed', String((r.error as Error)?.message ?? r.error));
      },
    });
    cleanups.push(async () => discovery.stop());
    const bootstrapAddrs = [
      ...(options.bootstrap ?? []),
      ...(config.bootstrap ?? []),
      ...(options.networkBootstrap !== false ? (network?.bootstrapPeers ?? []) : []),
    ].filter((a) => !a.includes(agent.key.serviceId));
    const bootstrapAbort = new AbortController();
    cleanups.push(async () => bootstrapAbort.abort());
    // A cold onion circuit can fail a first bootstrap round: retry in the background (bounded) until at least
    // one bootstrap peer answers. advertise/discover wait for the first success, but never for long.
    const bootstrapLoop =
      bootstrapAddrs.length === 0
        ? Promise.resolve()
        : (async () => {
            options.onProgress?.({ phase: 'dht', state: 'bootstrapping' });
            for (let round = 1; round <= BOOTSTRAP_ROUNDS && !bootstrapAbort.signal.aborted; round++) {
              try {
                const r = await bootstrapDialer(node.libp2p, bootstrapAddrs, {
                  signal: bootstrapAbort.signal,
                });
                record(
                  'dht-bootstrap',
                  `round ${round}: connected ${r.connected.length}, failed ${r.failed.length}`,
                );
                if (r.connected.length > 0) return;
              } catch (e) {
                record('dht-bootstrap-failed', e instanceof Error ? e.message : String(e));
              }
              await new Promise((r) => setTimeout(r, Math.min(5_000 * 2 ** (round - 1), 60_000)).unref());
            }
          })();
    const bootstrapped = () =>
      Promise.race([bootstrapLoop, new Promise<void>((r) => setTimeout(r, BOOTSTRAP_WAIT_MS).unref())]);

    // 6. memory sync: answered for peers, run by `sync`.
    await registerSync(node, agent.key, store, { allowClassical });
    cleanups.push(() => node.unhandle(SYNC_PROTOCOL).catch(() => {}));

    options.onProgress?.({ phase: 'ready', onion: agent.address });
    log('agent %s up (policy %s)', agent.address, policy);

    const toDiscovered = (ad: {
      advert: import('../discovery/advertisement.js').Advertisement;
    }): DiscoveredAgent => ({
      onion: ad.advert.onion,
      pubkey: ad.advert.pubkey,
      services: ad.advert.services,
      issuedAt: new Date(ad.advert.issuedAt).toISOString(),
      expiresAt: new Date(ad.advert.expiresAt).toISOString(),
      addrs: ad.advert.addrs,
      name: ad.advert.card.name,
      verified: true,
    });

    const runtime: AgentRuntime = {
      tor,
      node,
      onion,
      messenger,
      discovery,
      status() {
        return {
          bootstrap: lastBootstrap,
          socksPort: tor.socksPort,
          controlPort: tor.controlPort,
          onionPort: DEFAULT_ONION_VIRTUAL_PORT,
          listenPort: node.listenPort,
          policy,
          torMode: tor.mode,
          peers: node
            .connections()
            .map((c) => ({ onion: c.onion, transport: c.transport, direction: c.direction })),
          outbox: messenger.pending().length,
          events: [...events],
        };
      },
      send(peer, text, opts = {}) {
        return messenger.send(parseOnionAddress(peer).hostname, text, opts);
      },
      inbox(opts = {}) {
        return messenger.inbox(opts.limit !== undefined ? { limit: opts.limit } : {});
      },
      connect(peer, opts = {}) {
        return messenger.ping(parseOnionAddress(peer).hostname, opts);
      },
      async advertise(services, opts = {}) {
        await bootstrapped();
        const signed = await discovery.advertise(services, {
          ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        record('advertised', services.join(','));
        return {
          ...signed.advert,
          issuedAt: new Date(signed.advert.issuedAt).toISOString(),
          expiresAt: new Date(signed.advert.expiresAt).toISOString(),
          verified: true,
        };
      },
      async *discover(service, opts = {}) {
        await bootstrapped();
        opts.onProgress?.({ phase: 'discover', state: 'querying', service });
        for await (const ad of discovery.discover(service, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        })) {
          if (ad.advert.pubkey === agent.publicKeyHex) continue;
          yield toDiscovered(ad);
        }
      },
      async syncMany(peers, opts = {}) {
        let targets = peers.map((p) => parseOnionAddress(p).hostname);
        if (targets.length === 0) {
          targets = [...(config.syncPeers ?? []).map((p) => parseOnionAddress(p).hostname)];
          if (targets.length === 0) {
            for await (const ad of runtime.discover('memory_sync', {
              ...(opts.signal ? { signal: opts.signal } : {}),
              timeoutMs: Math.min(opts.timeoutMs ?? 30_000, 30_000),
              limit: 20,
            })) {
              targets.push(ad.onion);
            }
          }
        }
        const results: SyncPeerResult[] = [];
        for (const peer of [...new Set(targets)]) {
          const started = Date.now();
          try {
            const r = await syncWithPeer(node, agent.key, store, peer, {
              allowClassical,
              ...(opts.signal ? { signal: opts.signal } : {}),
              ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
              ...(opts.onProgress
                ? { onProgress: (e) => opts.onProgress?.({ phase: 'sync', peer, ...e }) }
                : {}),
            });
            results.push({ peer, sent: r.sent, received: r.received, head: r.head, ms: Math.round(r.ms) });
            record('synced', `${peer}: sent ${r.sent}, received ${r.received}`);
          } catch (e) {
            const err =
              e instanceof MmogitError ? e : new MmogitError('ERR_SYNC', String((e as Error)?.message ?? e));
            results.push({
              peer,
              sent: 0,
              received: 0,
              head: null,
              ms: Date.now() - started,
              error: { code: err.code, message: err.message },
            });
            record('sync-failed', `${peer}: ${err.message}`);
          }
        }
        return results;
      },
      async stop() {
        await cleanup();
      },
    };
    return runtime;
  } catch (e) {
    await cleanup();
    throw e;
  }
}
