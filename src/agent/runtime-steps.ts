/**
 * The steps of starting an agent's network side, one function each, in the order `startRuntime` runs them:
 * tor, the libp2p node, the onion service, messaging, discovery (with DHT bootstrap in the background), memory
 * sync. Each gets only what it needs and registers how to undo itself in a {@link Cleanups} list.
 * @module
 */
import { join } from 'node:path';
import type { Libp2p } from '@libp2p/interface';
import { kadDHT } from '@libp2p/kad-dht';
import { raceAbort, sleep } from '../_async.js';
import { createLogger } from '../_log.js';
import { BOOTSTRAP_TIMEOUT_MS, bootstrapDialer } from '../discovery/bootstrap.js';
import { dhtServiceOptions } from '../discovery/dht.js';
import { Discovery, type DiscoveryNode } from '../discovery/discovery.js';
import { SELF_LOOKUP_TIMEOUT_MS, selfLookup } from '../discovery/self-lookup.js';
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { CONFIG_FILES } from '../identity/store.js';
import type { MemoryStore } from '../memory/store.js';
import { SyncQuota, type SyncQuotaLimits } from '../memory/sync/index.js';
import { type AgentMetrics, reasonLabel } from '../metrics/agent-metrics.js';
import { attachTor, startTor, type TorHandle } from '../tor/daemon.js';
import {
  DEFAULT_ONION_VIRTUAL_PORT,
  type OnionPortTarget,
  type OnionService,
  publishOnion,
} from '../tor/onion-service.js';
import type { TorNetworkInfo } from '../tor/testnet.js';
import type { TransportPolicy } from '../transport/hybrid.js';
import { type AgentNode, createAgentNode } from '../transport/node.js';
import type { MeshConnector } from '../transport/onion3.js';
import type { AgentEmit } from './agent-events.js';
import { type FileService, startFileService } from './files-service.js';
import { FILE_PROTOCOL } from './files-wire.js';
import { type HookSettings, MessageHooks } from './hooks.js';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_SKEW_MS, Messenger } from './messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from './messaging-adapters.js';
import { MESSAGE_PROTOCOLS } from './messaging-connections.js';
import { DIRECT_MESSAGING_SOCKET, type DirectMessaging, startDirectMessaging } from './messaging-direct.js';
import type { MessagingNode } from './messaging-types.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { AgentConfig, AgentProgress, AgentStartOptions } from './runtime-types.js';
import { registerSync, SYNC_PROTOCOL } from './sync.js';

const log = createLogger('mmogit:agent');

/**
 * DHT bootstrap in the background: dial tries per address. With the dialer's backoff (full jitter, capped at
 * 8 s) that keeps retrying a cold onion circuit for up to about a minute, and {@link BOOTSTRAP_TIMEOUT_MS}
 * bounds the whole bootstrap: one bounded policy, not rounds of the dialer's own retries.
 */
export const RUNTIME_BOOTSTRAP_ATTEMPTS = 12;
/** How long advertise/discover wait for the DHT bootstrap before going ahead with what the node knows. */
export const BOOTSTRAP_WAIT_MS = 30_000;

/** What every step may use: who the agent is, where its files are, how to report, and how to name peers. */
export interface RuntimeContext {
  key: AgentKey;
  configDir: string;
  emit: AgentEmit;
  /** The onion a peer name stands for (an onion, or a contact's alias); default: onions only. */
  resolvePeer?: (peer: string) => Promise<string>;
  /** The `mesh` transport route (the agent's `agent.mesh`), for peers whose policy uses the mesh. */
  meshConnect?: MeshConnector;
}

/** What a step has that needs undoing if a later step fails, or at stop; undone last first. */
export class Cleanups {
  private readonly steps: (() => Promise<void>)[] = [];

  push(fn: () => Promise<void>): void {
    this.steps.push(fn);
  }

  /** Runs every registered step, newest first; a failing step is logged and the rest still run. */
  async run(): Promise<void> {
    for (const fn of this.steps.splice(0).reverse()) {
      await fn().catch((e: unknown) => log('cleanup: %s', e instanceof Error ? e.message : String(e)));
    }
  }
}

/** Records a runtime event (`status().events` and the agent's `event` event). */
export type RecordEvent = (type: string, detail: string) => void;

/** Step 1: tor, spawned in `<configDir>/tor` (default) or the user's own (`torControl`). */
export async function startTorStep(
  ctx: RuntimeContext,
  options: AgentStartOptions,
  config: AgentConfig,
  network: TorNetworkInfo | undefined,
  record: RecordEvent,
  cleanups: Cleanups,
  signal: AbortSignal,
  metrics: AgentMetrics,
): Promise<TorHandle> {
  const onProgress = (p: { progress: number; summary: string; warning?: string }) => {
    metrics.torBootstrap.set(p.progress / 100);
    options.onProgress?.({
      phase: 'tor',
      progress: p.progress,
      summary: p.summary,
      ...(p.warning ? { warning: p.warning } : {}),
    });
  };
  const bridges = options.bridges ?? config.bridges;
  const tor: TorHandle = options.torControl
    ? await attachTor({
        control: options.torControl,
        ...(options.torPassword ? { password: options.torPassword } : {}),
        onProgress,
        signal,
      })
    : await startTor({
        dataDir: join(ctx.configDir, CONFIG_FILES.tor),
        ...(network ? { network } : {}),
        ...(options.useBridges ? { useBridges: true } : {}),
        ...(bridges ? { bridges } : {}),
        ...(options.torRestartLimit ? { restartLimit: options.torRestartLimit } : {}),
        onProgress,
        signal,
      });
  cleanups.push(() => tor.stop());
  tor.on('died', (e) => record('tor-died', `code ${e.code} signal ${e.signal}; restart: ${e.willRestart}`));
  tor.on('restarted', (e) =>
    record(
      'tor-restarted',
      `attempt ${e.attempt}, pid ${e.pid}, republished ${e.republished.length} onion(s)`,
    ),
  );
  tor.on('restart-failed', (e) => record('tor-restart-failed', e.message));
  return tor;
}

/** Step 2: the libp2p node, listening on 127.0.0.1 where the onion service forwards to. */
export async function startNodeStep(
  ctx: RuntimeContext,
  tor: TorHandle,
  settings: {
    policy: TransportPolicy;
    peerPolicies: Record<string, TransportPolicy>;
    listenPort?: number | undefined;
    onProgress?: ((p: AgentProgress) => void) | undefined;
  },
  record: RecordEvent,
  cleanups: Cleanups,
): Promise<AgentNode> {
  const node = await createAgentNode({
    key: ctx.key,
    ...(settings.listenPort !== undefined ? { listenPort: settings.listenPort } : {}),
    onion: { serviceId: ctx.key.serviceId, virtualPort: DEFAULT_ONION_VIRTUAL_PORT },
    // Read at each dial: an attached tor that comes back may listen on another SOCKS port.
    socks: {
      get host() {
        return tor.socksHost;
      },
      get port() {
        return tor.socksPort;
      },
    },
    policy: settings.policy,
    ...(Object.keys(settings.peerPolicies).length > 0 ? { peerPolicies: settings.peerPolicies } : {}),
    services: { dht: kadDHT(dhtServiceOptions()) },
    ...(ctx.meshConnect ? { meshConnect: ctx.meshConnect } : {}),
    onDowngrade: (e) => {
      record(
        'downgrade',
        `${e.direction} ${e.peer} ${e.from} → ${e.to} via ${e.multiaddr}: ${e.reason ?? `${e.from} failed`}`,
      );
      process.stderr.write(
        e.to === 'direct'
          ? `mmogit: WARNING: connection to ${e.peer} is not using tor (${e.multiaddr})\n`
          : `mmogit: WARNING: connection to ${e.peer} is not using the mesh (tor instead)\n`,
      );
    },
  });
  cleanups.push(() => node.stop());
  settings.onProgress?.({ phase: 'node', listenPort: node.listenPort });
  return node;
}

/** Step 3: the onion service with the agent's own key, published before anyone is told the agent is up. */
export async function publishOnionStep(
  ctx: RuntimeContext,
  tor: TorHandle,
  node: AgentNode,
  onProgress: ((p: AgentProgress) => void) | undefined,
  cleanups: Cleanups,
  signal: AbortSignal,
  extraPorts: readonly OnionPortTarget[] = [],
): Promise<OnionService> {
  onProgress?.({ phase: 'onion', state: 'publishing' });
  const onion = await publishOnion(tor, ctx.key, {
    targetPort: node.listenPort,
    virtualPort: DEFAULT_ONION_VIRTUAL_PORT,
    ...(extraPorts.length > 0 ? { extraPorts } : {}),
    waitForUpload: true,
    signal,
  });
  cleanups.push(() => onion.remove().catch(() => {}));
  onProgress?.({
    phase: 'onion',
    state: 'published',
    ms: Math.round(onion.publishMs),
    ...(onion.uploadMs !== undefined ? { uploadMs: Math.round(onion.uploadMs) } : {}),
  });
  return onion;
}

/** Step 4: messaging, its events forwarded to the agent (it retries the persisted outbox at once). */
export async function startMessagingStep(
  ctx: RuntimeContext,
  node: AgentNode,
  store: MemoryStore,
  settings: {
    allowClassical: boolean;
    versions?: readonly (1 | 2)[] | undefined;
    hooks?: MessageHooks | undefined;
    inboundRate?: RateLimitOptions | undefined;
    /** Listen for direct messaging streams on 127.0.0.1 instead of a Unix socket (attach mode). */
    loopbackTcp?: boolean;
  },
  record: RecordEvent,
  cleanups: Cleanups,
  metrics: AgentMetrics,
): Promise<{ messenger: Messenger; direct: DirectMessaging }> {
  // Messages, acks and pings on a tor stream of their own (messaging-direct.ts), libp2p for peers without it.
  const socketPath = join(ctx.configDir, DIRECT_MESSAGING_SOCKET);
  const direct = await startDirectMessaging({
    base: messagingNodeFromAgentNode(node),
    openStream: (onion, port, o) => node.openOnionStream(onion, port, o),
    // Files too: a transfer's chunks are PQ-session payloads like messages, and a yamux window no longer sits
    // between them and tor's own flow control. Sync stays on libp2p.
    protocols: [...Object.values(MESSAGE_PROTOCOLS), FILE_PROTOCOL],
    // A tor that is not ours (attach mode) may run as a user that cannot open our 0600 socket; a socket path
    // past sun_path's 108 bytes cannot be bound: loopback TCP then.
    listen:
      settings.loopbackTcp || Buffer.byteLength(socketPath) > 100
        ? { host: '127.0.0.1' }
        : { path: socketPath },
  });
  cleanups.push(() => direct.close());
  const messenger = new Messenger({
    metrics,
    node: direct.node,
    key: ctx.key,
    store: messageStoreFromMemory(store, {
      journalPath: join(ctx.configDir, 'messages.journal'),
      indexPath: join(ctx.configDir, 'messages.index'),
      onError: (e) => record('store-error', e instanceof Error ? e.message : String(e)),
    }),
    outboxDir: join(ctx.configDir, CONFIG_FILES.outbox),
    allowClassical: settings.allowClassical,
    ...(settings.versions ? { versions: settings.versions } : {}),
    ...(settings.inboundRate ? { limits: { rate: settings.inboundRate } } : {}),
  });
  messenger.on('message', (m) => {
    metrics.messagesReceived.inc();
    ctx.emit('message', m);
  });
  messenger.on('delivered', (e) => {
    metrics.messagesDelivered.inc();
    ctx.emit('delivered', e);
  });
  messenger.on('queued', (e) => {
    metrics.messagesQueued.inc({ reason: reasonLabel(e.error.code) });
    ctx.emit('queued', e);
  });
  messenger.on('refused', (e) => {
    metrics.messagesRefused.inc({ direction: 'out', reason: reasonLabel(e.error.code) });
    record('message-refused', `${e.id} to ${e.to}: ${e.error.message}`);
    ctx.emit('refused', e);
  });
  messenger.on('error', (e) => record('messaging-error', e.message));
  const hooks = settings.hooks;
  if (hooks) messenger.on('received', (m, signed) => hooks.onMessage(m, signed));
  await messenger.start();
  cleanups.push(() => messenger.stop());
  return { messenger, direct };
}

/** A libp2p node whose services include a DHT (the node of step 2 always has one). */
function isDiscoveryNode(node: Libp2p): node is DiscoveryNode {
  const services: { dht?: unknown } = node.services;
  const dht = services.dht;
  return typeof dht === 'object' && dht !== null && 'provide' in dht && 'findProviders' in dht;
}

/**
 * Step 5: discovery, with bootstrap dialing in the background (the agent is usable before the DHT is).
 * Returns the discovery service, `bootstrapped()`, which advertise/discover await (it resolves once the
 * bootstrap ended, or after {@link BOOTSTRAP_WAIT_MS} at the latest), and `rejoin()`, for when the agent's tor
 * came back: one more bounded bootstrap, then, when no bootstrap agent is configured or none answered, a
 * bounded self-lookup through the peers the routing table still holds. Each ends with an event.
 */
export function startDiscoveryStep(
  ctx: RuntimeContext,
  node: AgentNode,
  bootstrapAddrs: string[],
  onProgress: ((p: AgentProgress) => void) | undefined,
  record: RecordEvent,
  cleanups: Cleanups,
  metrics: AgentMetrics,
): { discovery: Discovery; bootstrapped: () => Promise<void>; rejoin: () => Promise<void> } {
  const libp2p = node.libp2p;
  if (!isDiscoveryNode(libp2p)) throw new MmogitError('ERR_INTERNAL', 'the agent node has no DHT service');
  const discovery = new Discovery(libp2p, ctx.key, {
    onPublish: (r) => {
      metrics.advertisements.inc({ result: 'error' in r ? 'error' : 'ok' });
      if ('error' in r)
        record('advertise-failed', r.error instanceof Error ? r.error.message : String(r.error));
    },
  });
  cleanups.push(async () => discovery.stop());
  const addrs = bootstrapAddrs.filter((a) => !a.includes(ctx.key.serviceId));
  const abort = new AbortController();
  cleanups.push(async () => abort.abort());
  const bootstrap =
    addrs.length === 0
      ? Promise.resolve()
      : bootstrapDht(libp2p, addrs, onProgress, record, abort).then(() => {});
  const bootstrapped = () => Promise.race([bootstrap, sleep(BOOTSTRAP_WAIT_MS, { unref: true })]);
  const rejoin = async (): Promise<void> => {
    if (abort.signal.aborted) return;
    if (addrs.length > 0 && (await bootstrapDht(libp2p, addrs, undefined, record, abort)) > 0) return;
    if (abort.signal.aborted) return;
    await rejoinThroughTable(
      libp2p,
      addrs.length === 0 ? 'no bootstrap address' : 'no bootstrap agent reachable',
      record,
      abort,
    );
  };
  return { discovery, bootstrapped, rejoin };
}

/**
 * A re-join without a bootstrap agent: a self-lookup through the peers still in the routing table (they may
 * have survived our tor's restart; a lookup that reaches any of them refreshes the table), bounded by
 * {@link SELF_LOOKUP_TIMEOUT_MS} and aborted at stop. Records `dht-rejoin` or `dht-rejoin-failed`; never throws.
 */
async function rejoinThroughTable(
  libp2p: Libp2p,
  why: string,
  record: RecordEvent,
  abort: AbortController,
): Promise<void> {
  try {
    const r = await selfLookup(libp2p, {
      signal: abort.signal,
      timeoutMs: SELF_LOOKUP_TIMEOUT_MS,
      requirePeers: true,
    });
    const detail =
      `self-lookup (${why}) through ${r.tableBefore} routing-table peers: ${r.closest} closest found, ` +
      `table ${r.tableBefore} → ${r.tableAfter}, ${r.durationMs} ms`;
    record(r.closest > 0 ? 'dht-rejoin' : 'dht-rejoin-failed', detail);
  } catch (e) {
    if (!abort.signal.aborted) {
      record('dht-rejoin-failed', `self-lookup (${why}): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/**
 * One bounded bootstrap: the dialer's retries per address, {@link BOOTSTRAP_TIMEOUT_MS} for all. Never throws;
 * resolves to how many bootstrap agents it reached.
 */
async function bootstrapDht(
  libp2p: Libp2p,
  addrs: string[],
  onProgress: ((p: AgentProgress) => void) | undefined,
  record: RecordEvent,
  abort: AbortController,
): Promise<number> {
  onProgress?.({ phase: 'dht', state: 'bootstrapping' });
  try {
    // The dialer keeps its own budget; the race is the outer bound that holds even if a dependency's call
    // inside it does not stop on abort, so a re-join always ends with an event.
    const bound = withTimeout(abort.signal, BOOTSTRAP_TIMEOUT_MS + 5_000, 'DHT bootstrap');
    const r = await raceAbort(
      bootstrapDialer(libp2p, addrs, {
        retry: { attempts: RUNTIME_BOOTSTRAP_ATTEMPTS },
        timeoutMs: BOOTSTRAP_TIMEOUT_MS,
        signal: abort.signal,
      }),
      bound,
      'DHT bootstrap',
    );
    record('dht-bootstrap', `connected ${r.connected.length}, failed ${r.failed.length}`);
    return r.connected.length;
  } catch (e) {
    if (!abort.signal.aborted) record('dht-bootstrap-failed', e instanceof Error ? e.message : String(e));
    return 0;
  }
}

/**
 * Step 4a, before messaging: the `on-message` hook, run for every stored message after its ack (none with
 * `settings: false`); messaging passes it every message from its first. A hook file that is not executable is
 * reported now (and whenever it changes), never fatal.
 */
export async function startHooksStep(
  ctx: RuntimeContext,
  settings: false | HookSettings,
  log: (line: string) => void,
  record: RecordEvent,
  cleanups: Cleanups,
): Promise<MessageHooks | undefined> {
  if (settings === false) return undefined;
  const hooks = new MessageHooks(ctx.configDir, { log, event: record }, settings);
  await hooks.check();
  cleanups.push(() => hooks.stop());
  return hooks;
}

/** Step 6: memory sync, answered for peers (run by `syncMany`). */
export async function startSyncStep(
  ctx: RuntimeContext,
  node: AgentNode,
  store: MemoryStore,
  options: { allowClassical: boolean; metrics: AgentMetrics; quota?: Partial<SyncQuotaLimits> },
  cleanups: Cleanups,
): Promise<void> {
  const { allowClassical, metrics } = options;
  const quota = options.quota === undefined ? undefined : new SyncQuota(options.quota);
  await registerSync(node, ctx.key, store, { allowClassical, metrics, quota });
  cleanups.push(() => node.unhandle(SYNC_PROTOCOL).catch(() => {}));
}

/** File transfer (`/mmogit/file/1.0.0`): stored files are listed through `messenger` (files-service.ts). */
export async function startFilesStep(
  ctx: RuntimeContext,
  node: MessagingNode,
  messenger: Messenger,
  settings: {
    allowClassical: boolean;
    maxFileBytes?: number | undefined;
    partialMaxAgeMs?: number | undefined;
  },
  record: RecordEvent,
  cleanups: Cleanups,
  metrics: AgentMetrics,
): Promise<FileService> {
  const files = await startFileService({
    node,
    key: ctx.key,
    configDir: ctx.configDir,
    allowClassical: settings.allowClassical,
    metrics,
    ...(settings.maxFileBytes !== undefined ? { maxFileBytes: settings.maxFileBytes } : {}),
    ...(settings.partialMaxAgeMs !== undefined ? { partialMaxAgeMs: settings.partialMaxAgeMs } : {}),
    maxFutureSkewMs: DEFAULT_MAX_FUTURE_SKEW_MS,
    maxAgeMs: DEFAULT_MAX_AGE_MS,
    list: (offer) => messenger.storeVerified(offer),
    fail: (err, peer) => record('file-error', `${peer ?? ''} ${err.code}: ${err.message}`),
    event: record,
  });
  cleanups.push(() => files.stop());
  return files;
}
