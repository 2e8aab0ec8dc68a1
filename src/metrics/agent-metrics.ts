/**
 * One agent's Prometheus metrics, in a prom-client `Registry` of their own: the daemon serves it
 * (`--metrics HOST:PORT`, server.ts) and the parts that count get this object injected, so several agents
 * in one process (tests, the testnet) never share a counter. Names follow the Prometheus conventions
 * (https://prometheus.io/docs/practices/naming/): an `mmogit_` prefix, base units (`_seconds`), `_total` on
 * counters, `_ratio` for 0–1 values; label values come from closed sets only — never an onion, a message id
 * or an error message.
 * @module
 */
import { collectDefaultMetrics } from 'prom-client';
import { type Gauge, metricsIn, Registry } from './define.js';

export { reasonLabel } from './labels.js';

/** Buckets for network operations over tor: sub-second on the private network, tens of seconds on the live one. */
const NETWORK_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
/** Buckets for handshakes (CPU-bound ML-KEM + X25519 plus one or two tor round trips). */
const HANDSHAKE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** prom-client's default gauges with a counter's suffix (removed; their per-type twins stay). */
const PROM_CLIENT_MISNAMED = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The tor connection's state, as the supervisor sees it (the `state` label of `mmogit_tor_state`). */
export const TOR_STATES = ['starting', 'up', 'restarting', 'waiting', 'failed', 'stopped'] as const;
export type TorState = (typeof TOR_STATES)[number];

/** What an onion self-probe found (the `result` label of `mmogit_onion_probes_total`). */
export const PROBE_RESULTS = ['ok', 'descriptor_failed', 'connect_failed', 'error'] as const;
export type ProbeResultLabel = (typeof PROBE_RESULTS)[number];

/** Why the onion was published again (the `reason` label of `mmogit_onion_republishes_total`). */
export type RepublishReason = 'probe' | 'tor_restart';

/** Read at scrape time: what the registry cannot count itself. Every source is optional. */
export interface MetricSources {
  /** Messages waiting for an ack and the oldest one's queue time (ms since the epoch). */
  outbox?: () => { depth: number; oldestQueuedAt: number | null };
  /** Open libp2p connections by transport (`tor`, `direct`). */
  connections?: () => { transport: string }[];
}

export interface AgentMetricsOptions {
  /** Also collect Node's process metrics (`process_*`, `nodejs_*`) into this registry. Default false. */
  processMetrics?: boolean;
  /** The clock for ages, ms (default `Date.now`). */
  now?: () => number;
}

/**
 * The metric objects of one agent and the registry holding them.
 *
 * @example
 * const metrics = new AgentMetrics({ processMetrics: true });
 * await agent.start({ metrics });
 * const text = await metrics.registry.metrics(); // Prometheus text exposition
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly define = metricsIn(this.registry);
  private sources: MetricSources = {};
  private readonly now: () => number;

  // ── tor and the onion ──────────────────────────────────────────────────────────────────────────────
  readonly torBootstrap = this.define.gauge({
    name: 'mmogit_tor_bootstrap_ratio',
    help: "tor's bootstrap progress (0-1)",
  });
  readonly torState = this.define.gauge({
    name: 'mmogit_tor_state',
    help: "1 for the tor connection's current state, 0 for the others",
    labelNames: ['state'],
  });
  readonly torDeaths = this.define.counter({
    name: 'mmogit_tor_deaths_total',
    help: 'Times the agent lost its tor (process exited or control connection closed)',
  });
  readonly torRestarts = this.define.counter({
    name: 'mmogit_tor_restarts_total',
    help: 'tor restarts (spawn mode) and reconnections (attach mode), by result',
    labelNames: ['result'],
  });
  readonly torRecoverySeconds = this.define.histogram({
    name: 'mmogit_tor_recovery_seconds',
    help: "From losing tor to the agent's onion answering its own probe again",
    buckets: NETWORK_BUCKETS,
  });
  readonly onionProbes = this.define.counter({
    name: 'mmogit_onion_probes_total',
    help: "Self-probes of the agent's onion through a fresh circuit, by result",
    labelNames: ['result'],
  });
  readonly onionProbeSuccess = this.define.gauge({
    name: 'mmogit_onion_probe_success',
    help: 'Whether the last self-probe reached the onion (1) or not (0)',
  });
  readonly onionProbeTimestamp = this.define.gauge({
    name: 'mmogit_onion_probe_last_timestamp_seconds',
    help: 'When the last self-probe ended (Unix time)',
  });
  readonly onionProbeSeconds = this.define.histogram({
    name: 'mmogit_onion_probe_duration_seconds',
    help: 'Time of one self-probe (descriptor fetch and rendezvous)',
    buckets: NETWORK_BUCKETS,
  });
  readonly onionRepublishes = this.define.counter({
    name: 'mmogit_onion_republishes_total',
    help: 'Times the onion was published again, by reason',
    labelNames: ['reason', 'result'],
  });

  // ── messaging ──────────────────────────────────────────────────────────────────────────────────────
  readonly messagesSent = this.define.counter({
    name: 'mmogit_messages_sent_total',
    help: 'Messages handed to send(), by what send() answered (delivered, queued, failed)',
    labelNames: ['status'],
  });
  readonly messagesDelivered = this.define.counter({
    name: 'mmogit_messages_delivered_total',
    help: "Sent messages acknowledged by the peer's signed ack (first attempt or a retry)",
  });
  readonly messagesQueued = this.define.counter({
    name: 'mmogit_messages_queued_total',
    help: 'Delivery attempts that failed, leaving the message in the outbox for a retry',
    labelNames: ['reason'],
  });
  readonly messagesReceived = this.define.counter({
    name: 'mmogit_messages_received_total',
    help: 'New messages received, stored and acknowledged (duplicates not counted)',
  });
  readonly messagesRefused = this.define.counter({
    name: 'mmogit_messages_refused_total',
    help: 'Messages refused: in = we refused a peer, out = a peer refused ours; by error code',
    labelNames: ['direction', 'reason'],
  });
  readonly outboxMessages: Gauge;
  readonly outboxOldestAge: Gauge;

  // ── memory sync ────────────────────────────────────────────────────────────────────────────────────
  readonly syncRuns = this.define.counter({
    name: 'mmogit_sync_runs_total',
    help: 'Memory sync runs, by role (initiator, responder) and result (ok, error)',
    labelNames: ['role', 'result'],
  });
  readonly syncEntries = this.define.counter({
    name: 'mmogit_sync_entries_total',
    help: 'Memory entries moved by sync, by direction (sent, received)',
    labelNames: ['direction'],
  });
  readonly syncSeconds = this.define.histogram({
    name: 'mmogit_sync_duration_seconds',
    help: 'Wall time of one sync run with one peer (initiator side)',
    buckets: NETWORK_BUCKETS,
  });

  // ── discovery ──────────────────────────────────────────────────────────────────────────────────────
  readonly discoveryQueries = this.define.counter({
    name: 'mmogit_discovery_queries_total',
    help: 'DHT discovery queries, by result (found, empty, error)',
    labelNames: ['result'],
  });
  readonly discoverySeconds = this.define.histogram({
    name: 'mmogit_discovery_query_duration_seconds',
    help: 'Wall time of one discovery query',
    buckets: NETWORK_BUCKETS,
  });
  readonly discoveryFirstSeconds = this.define.histogram({
    name: 'mmogit_discovery_first_result_seconds',
    help: 'Time from the start of a discovery query to its first verified advertisement',
    buckets: NETWORK_BUCKETS,
  });
  readonly advertisements = this.define.counter({
    name: 'mmogit_adverts_published_total',
    help: 'Advertisements put into the DHT (first and re-publications), by result',
    labelNames: ['result'],
  });

  // ── sessions ───────────────────────────────────────────────────────────────────────────────────────
  readonly pqHandshakes = this.define.counter({
    name: 'mmogit_pq_handshakes_total',
    help: 'Completed post-quantum session handshakes, by role and suite',
    labelNames: ['role', 'suite'],
  });
  readonly pqHandshakeFailures = this.define.counter({
    name: 'mmogit_pq_handshake_failures_total',
    help: 'Failed session handshakes, by role and error code',
    labelNames: ['role', 'reason'],
  });
  readonly pqHandshakeSeconds = this.define.histogram({
    name: 'mmogit_pq_handshake_duration_seconds',
    help: 'Wall time of a completed session handshake',
    labelNames: ['role'],
    buckets: HANDSHAKE_BUCKETS,
  });
  readonly sessionsOpen = this.define.gauge({
    name: 'mmogit_sessions_open',
    help: 'Post-quantum sessions open now (messaging and sync)',
  });
  readonly peerConnections: Gauge;

  constructor(options: AgentMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    const sources = () => this.sources;
    const now = () => this.now();
    this.outboxMessages = this.define.gauge({
      name: 'mmogit_outbox_messages',
      help: 'Messages in the outbox, waiting for an ack',
      collect() {
        const o = sources().outbox?.();
        this.set(o?.depth ?? 0);
      },
    });
    this.outboxOldestAge = this.define.gauge({
      name: 'mmogit_outbox_oldest_age_seconds',
      help: 'Age of the oldest message in the outbox (0 when empty)',
      collect() {
        const at = sources().outbox?.().oldestQueuedAt ?? null;
        this.set(at === null ? 0 : Math.max(0, (now() - at) / 1000));
      },
    });
    this.peerConnections = this.define.gauge({
      name: 'mmogit_peer_connections',
      help: 'Open libp2p connections to peers, by transport',
      labelNames: ['transport'],
      collect() {
        this.reset();
        // Both transports are always present, so a dashboard's series never vanish.
        const counts: Record<string, number> = { tor: 0, direct: 0 };
        for (const c of sources().connections?.() ?? []) {
          const t = c.transport === 'direct' ? 'direct' : 'tor';
          counts[t] = (counts[t] ?? 0) + 1;
        }
        for (const [transport, n] of Object.entries(counts)) this.set({ transport }, n);
      },
    });
    this.setTorState('starting');
    this.onionProbeSuccess.set(0);
    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client names three gauges `_total`, which the conventions keep for counters (promtool flags
      // them); the same numbers are in `nodejs_active_{handles,requests,resources}` by type.
      for (const name of PROM_CLIENT_MISNAMED) this.registry.removeSingleMetric(name);
    }
  }

  /** Names what the gauges read at scrape time (the runtime calls this once its parts exist). */
  observe(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Sets `mmogit_tor_state`: 1 for `state`, 0 for every other state. */
  setTorState(state: TorState): void {
    for (const s of TOR_STATES) this.torState.set({ state: s }, s === state ? 1 : 0);
  }

  /** The text exposition of this registry (and of `more`, e.g. the mesh's registry), for one scrape. */
  async exposition(more: readonly Registry[] = []): Promise<string> {
    if (more.length === 0) return this.registry.metrics();
    return Registry.merge([this.registry, ...more]).metrics();
  }
}
