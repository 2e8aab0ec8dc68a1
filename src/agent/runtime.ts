import '../_polyfill.js';
import { createLogger } from '../_log.js';
import type { Advertisement } from '../discovery/advertisement.js';
import { MmogitError, withTimeout } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import type { MemoryStore } from '../memory/store.js';
import { AgentMetrics } from '../metrics/agent-metrics.js';
import { DEFAULT_ONION_VIRTUAL_PORT } from '../tor/onion-service.js';
import { loadNetwork } from '../tor/testnet.js';
import { asMmogitError } from './_errors.js';
import { ContactBook } from './contacts.js';
import { FILE_MESSAGE_TYPE } from './files-wire.js';
import type { PingResult } from './messaging-types.js';
import { checkPolicy, loadAgentConfig } from './runtime-config.js';
import {
  Cleanups,
  publishOnionStep,
  type RecordEvent,
  type RuntimeContext,
  startDiscoveryStep,
  startFilesStep,
  startHooksStep,
  startMessagingStep,
  startNodeStep,
  startSyncStep,
  startTorStep,
} from './runtime-steps.js';
import type {
  AgentRuntime,
  AgentStartOptions,
  DiscoveredAgent,
  RuntimeStatus,
  SyncPeerResult,
} from './runtime-types.js';
import { Supervisor } from './supervisor.js';
import { syncWithPeer } from './sync.js';

export { loadAgentConfig } from './runtime-config.js';
export type { RuntimeContext } from './runtime-steps.js';
export type * from './runtime-types.js';

/**
 * The network side of a started agent: tor, the onion service, the libp2p node and the protocols on it
 * (messaging, DHT discovery, memory sync). Built by {@link startRuntime} from the steps in runtime-steps.ts;
 * reached with `agent.net()`.
 * @module
 */

const log = createLogger('mmogit:agent');

export const DEFAULT_AGENT_START_TIMEOUT_MS = 180_000;
/** Most pings one `ping` call makes. */
const MAX_PINGS = 100;
/** How many runtime events `status().events` keeps. */
const EVENTS_KEPT = 50;

function toDiscovered(advert: Advertisement): DiscoveredAgent {
  return {
    onion: advert.onion,
    pubkey: advert.pubkey,
    services: advert.services,
    issuedAt: new Date(advert.issuedAt).toISOString(),
    expiresAt: new Date(advert.expiresAt).toISOString(),
    addrs: advert.addrs,
    name: advert.card.name,
    verified: true,
  };
}

/**
 * Starts the agent's network side for `ctx` (its key, config dir and event sink) over its memory `store`. On
 * any failure everything started so far is stopped again.
 */
export async function startRuntime(
  ctx: RuntimeContext,
  store: MemoryStore,
  options: AgentStartOptions,
): Promise<AgentRuntime> {
  const signal = withTimeout(
    options.signal,
    options.timeoutMs ?? DEFAULT_AGENT_START_TIMEOUT_MS,
    'agent start',
  );
  const config = await loadAgentConfig(ctx.configDir);
  const policy = checkPolicy(options.policy) ?? config.policy ?? 'tor-only';
  const allowClassical = options.allowClassical ?? config.allowClassical ?? false;
  const networkDir = options.network ?? process.env.MMOGIT_TOR_NETWORK;
  const network = networkDir ? await loadNetwork(networkDir) : undefined;
  const events: RuntimeStatus['events'] = [];
  const record: RecordEvent = (type, detail) => {
    events.push({ at: new Date().toISOString(), type, detail });
    if (events.length > EVENTS_KEPT) events.shift();
    ctx.emit('event', { type, detail });
  };
  const metrics = options.metrics ?? new AgentMetrics();
  const cleanups = new Cleanups();
  const resolve = ctx.resolvePeer ?? (async (p: string) => parseOnionAddress(p).hostname);
  try {
    const tor = await startTorStep(ctx, options, config, network, record, cleanups, signal, metrics);
    const node = await startNodeStep(
      ctx,
      tor,
      {
        policy,
        peerPolicies: { ...config.peerPolicies, ...options.peerPolicies },
        listenPort: options.listenPort,
        onProgress: options.onProgress,
      },
      record,
      cleanups,
    );
    // A2A (optional): its server listens before the onion names it as port 80.
    let advertisedServices: string[] = [];
    let a2a: AgentRuntime['a2a'] = null;
    if (options.a2a) {
      const { startAgentA2a } = await import('../a2a/serve.js');
      const started = await startAgentA2a({
        key: ctx.key,
        configDir: ctx.configDir,
        loopbackTcp: tor.mode === 'attach',
        services: () => advertisedServices,
        deliver: (task) => ctx.emit('a2a-task', task),
        ...(typeof options.a2a === 'object' ? { limits: options.a2a } : {}),
      });
      a2a = started;
      cleanups.push(() => started.close());
    }
    const logLine =
      options.onLog ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
    const hooks = await startHooksStep(ctx, options.hooks ?? config.hooks ?? {}, logLine, record, cleanups);
    const { messenger, direct } = await startMessagingStep(
      ctx,
      node,
      store,
      {
        allowClassical,
        versions: options.messagingVersions,
        hooks,
        inboundRate: options.inboundRate ?? config.inboundRate,
        loopbackTcp: tor.mode === 'attach',
      },
      record,
      cleanups,
      metrics,
    );
    const files = await startFilesStep(
      ctx,
      direct.node,
      messenger,
      {
        allowClassical,
        maxFileBytes: options.maxFileBytes ?? config.maxFileBytes,
        partialMaxAgeMs: config.filePartialMaxAgeMs,
      },
      record,
      cleanups,
      metrics,
    );
    await startSyncStep(ctx, node, store, { allowClassical, metrics, quota: options.syncQuota }, cleanups);
    // The onion is published only once every protocol it serves is registered: a peer that dials the
    // descriptor's first moments (a sender retrying right after our restart) must find messaging, files and
    // sync answering, not "protocol not supported", which it rightly takes as a permanent refusal.
    const onion = await publishOnionStep(
      ctx,
      tor,
      node,
      options.onProgress,
      cleanups,
      signal,
      a2a ? [direct.port, a2a.port] : [direct.port],
    );
    const bootstrapAddrs = [
      ...(options.bootstrap ?? []),
      ...(config.bootstrap ?? []),
      ...(options.networkBootstrap !== false ? (network?.bootstrapPeers ?? []) : []),
    ];
    const { discovery, bootstrapped, rejoin } = startDiscoveryStep(
      ctx,
      node,
      bootstrapAddrs,
      options.onProgress,
      record,
      cleanups,
      metrics,
    );
    metrics.observe({
      outbox: () => {
        const pending = [...messenger.pending(), ...files.pending()];
        let oldest: number | null = null;
        for (const p of pending) if (oldest === null || p.queuedAt < oldest) oldest = p.queuedAt;
        return { depth: pending.length, oldestQueuedAt: oldest };
      },
      connections: () => node.connections(),
    });
    // Last to start, first to stop: it heals with the parts above.
    const supervisor = new Supervisor({
      tor,
      onion: { serviceId: onion.serviceId, onion: onion.onion, virtualPort: onion.virtualPort },
      metrics,
      record,
      ...(options.selfProbe !== undefined ? { options: options.selfProbe } : {}),
      heal: {
        retryOutbox: () => {
          messenger.retryNow();
          files.retryNow();
        },
        rejoinDht: async () => {
          await rejoin();
          if (advertisedServices.length > 0) await runtime.advertise(advertisedServices).catch(() => {});
        },
      },
    });
    supervisor.start();
    cleanups.push(() => supervisor.stop());
    options.onProgress?.({ phase: 'ready', onion: ctx.key.onion });
    log('agent %s up (policy %s)', ctx.key.onion, policy);

    const runtime: AgentRuntime = {
      tor,
      node,
      onion,
      messenger,
      files,
      discovery,
      a2a,
      metrics,
      supervisor,
      status() {
        return {
          // The runtime exists only once tor has bootstrapped.
          bootstrap: 100,
          socksPort: tor.socksPort,
          controlPort: tor.controlPort,
          onionPort: DEFAULT_ONION_VIRTUAL_PORT,
          listenPort: node.listenPort,
          policy,
          torMode: tor.mode,
          peers: node
            .connections()
            .map((c) => ({ onion: c.onion, transport: c.transport, direction: c.direction })),
          outbox: messenger.pending().length + files.pending().length,
          events: [...events],
          ...(a2a ? { a2a: a2a.url } : {}),
          health: supervisor.status(),
        };
      },
      async send(peer, message, opts = {}) {
        if (typeof message === 'object' && message.type === FILE_MESSAGE_TYPE) {
          throw new MmogitError('ERR_INVALID_ARGUMENT', 'type "file" is for sendFile (mmogit send --file)');
        }
        try {
          const r = await messenger.send(await resolve(peer), message, opts);
          metrics.messagesSent.inc({ status: r.status });
          return r;
        } catch (e) {
          metrics.messagesSent.inc({ status: 'failed' });
          throw e;
        }
      },
      async sendFile(peer, path, opts = {}) {
        return files.send(await resolve(peer), path, opts);
      },
      async inbox(filter = {}) {
        return messenger.inbox({ ...filter, ...(filter.from ? { from: await resolve(filter.from) } : {}) });
      },
      async *messages(opts = {}) {
        const from = opts.from ? await resolve(opts.from) : undefined;
        yield* messenger.messages({ ...opts, from });
      },
      async connect(peer, opts = {}) {
        return messenger.ping(await resolve(peer), opts);
      },
      async ping(peer, opts = {}) {
        const onion = await resolve(peer);
        const count = opts.count ?? 1;
        if (!Number.isSafeInteger(count) || count < 1 || count > MAX_PINGS) {
          throw new MmogitError('ERR_INVALID_ARGUMENT', `ping count must be 1 to ${MAX_PINGS}`);
        }
        const rttsMs: number[] = [];
        let first: PingResult | undefined;
        for (let i = 0; i < count; i++) {
          const r = await messenger.ping(onion, {
            ...(opts.signal ? { signal: opts.signal } : {}),
            fresh: i === 0 && opts.fresh === true,
          });
          first ??= r;
          rttsMs.push(r.rttMs);
        }
        const sorted = [...rttsMs].sort((x, y) => x - y);
        const { rttMs: _first, ...session } = first as PingResult;
        return {
          ...session,
          rttsMs,
          rttMs: {
            min: sorted[0] as number,
            median: sorted[Math.floor((sorted.length - 1) / 2)] as number,
            max: sorted[sorted.length - 1] as number,
          },
        };
      },
      // Messages and files share the outbox view; an id names one or the other.
      outbox: () =>
        [...messenger.pending(), ...files.pending()].sort(
          (a, b) => a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : 1),
        ),
      retryQueued: (id, opts = {}) =>
        files.has(id) ? files.retry(id, opts) : messenger.retryQueued(id, opts),
      dropQueued: (id) => (files.has(id) ? files.drop(id) : messenger.dropQueued(id)),
      async advertise(services, opts = {}) {
        await bootstrapped();
        const signed = await discovery.advertise(services, {
          ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        advertisedServices = [...services];
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
        const t0 = performance.now();
        let found = 0;
        let result = 'error';
        try {
          // contacts first: a flood of throw-away adverts cannot push them out (docs/threat-model.md)
          const prefer = (await new ContactBook(ctx.configDir).list().catch(() => [])).map(
            (c) => parseOnionAddress(c.onion).publicKey,
          );
          for await (const ad of discovery.discover(service, {
            prefer,
            ...(opts.signal ? { signal: opts.signal } : {}),
            ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
            ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          })) {
            if (ad.advert.pubkey === ctx.key.publicKeyHex) continue;
            if (found++ === 0) metrics.discoveryFirstSeconds.observe((performance.now() - t0) / 1000);
            yield toDiscovered(ad.advert);
          }
          result = found > 0 ? 'found' : 'empty';
        } finally {
          // A consumer that stops early (limit reached) ends here too, with what it found.
          if (found > 0) result = 'found';
          metrics.discoveryQueries.inc({ result });
          metrics.discoverySeconds.observe((performance.now() - t0) / 1000);
        }
      },
      async syncMany(peers, opts = {}) {
        let targets = await Promise.all(peers.map(resolve));
        if (targets.length === 0) {
          targets = (config.syncPeers ?? []).map((p) => parseOnionAddress(p).hostname);
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
            const r = await syncWithPeer(node, ctx.key, store, peer, {
              allowClassical,
              metrics,
              ...(opts.signal ? { signal: opts.signal } : {}),
              ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
              ...(opts.onProgress
                ? { onProgress: (e) => opts.onProgress?.({ phase: 'sync', peer, ...e }) }
                : {}),
            });
            results.push({ peer, sent: r.sent, received: r.received, head: r.head, ms: Math.round(r.ms) });
            record('synced', `${peer}: sent ${r.sent}, received ${r.received}`);
            metrics.syncRuns.inc({ role: 'initiator', result: 'ok' });
            metrics.syncEntries.inc({ direction: 'sent' }, r.sent);
            metrics.syncEntries.inc({ direction: 'received' }, r.received);
            metrics.syncSeconds.observe((Date.now() - started) / 1000);
          } catch (e) {
            const err = e instanceof MmogitError ? e : new MmogitError('ERR_SYNC', asMmogitError(e).message);
            results.push({
              peer,
              sent: 0,
              received: 0,
              head: null,
              ms: Date.now() - started,
              error: { code: err.code, message: err.message },
            });
            record('sync-failed', `${peer}: ${err.message}`);
            metrics.syncRuns.inc({ role: 'initiator', result: 'error' });
          }
        }
        return results;
      },
      stop: () => cleanups.run(),
    };
    return runtime;
  } catch (e) {
    await cleanups.run();
    throw e;
  }
}
