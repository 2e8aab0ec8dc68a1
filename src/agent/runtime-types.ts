/**
 * The shapes of the agent's network side: start options and progress, status, results, and the
 * {@link AgentRuntime} that `agent.net()` returns. Types only.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import type { Discovery } from '../discovery/discovery.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { TorHandle } from '../tor/daemon.js';
import type { OnionService } from '../tor/onion-service.js';
import type { TransportPolicy } from '../transport/hybrid.js';
import type { AgentNode } from '../transport/node.js';
import type { RuntimeEvent } from './agent-events.js';
import type { HookSettings } from './hooks.js';
import type { Messenger } from './messaging.js';
import type {
  InboxFilter,
  MessageInput,
  PendingMessage,
  PingResult,
  ReceivedMessage,
  SendResult,
} from './messaging-types.js';
import type { SelfProbeOptions, Supervisor, SupervisorStatus } from './supervisor.js';

export type { TransportPolicy };

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
  /**
   * Message format versions to speak (default `[2, 1]`; `[1]` behaves as a version 1 agent, for
   * compatibility tests). docs/protocol.md §5.10.
   */
  messagingVersions?: readonly (1 | 2)[];
  /** Cap on a file sent or received, bytes (default: config.json's `maxFileBytes`, else 1 GiB). */
  maxFileBytes?: number;
  /**
   * The `<configDir>/hooks/on-message` hook's bounds, or `false` to run no hook (default: config.json's
   * `hooks`, else 10 s and 2 at once). docs/cli.md, Hooks.
   */
  hooks?: false | HookSettings;
  /** Where hook output and hook warnings go, one line each (default: stderr, which the daemon logs). */
  onLog?: (line: string) => void;
  /**
   * Serve A2A v1.0 on this agent's onion (port 80, the agent card at `/.well-known/agent-card.json`); inbound
   * tasks arrive as `a2a-task` events. `true` for the default limits.
   */
  a2a?: boolean | import('../a2a/server.js').A2aLimits;
  /** Where the agent counts its metrics (default: a registry of its own, at `agent.net().metrics`). */
  metrics?: AgentMetrics;
  /** The onion self-probe's settings (src/agent/supervisor.ts); `false` turns it off. */
  selfProbe?: SelfProbeOptions | false;
  /**
   * What peers may ask of this agent's memory sync: one sync at a time per peer, a burst of 10 and then 120
   * an hour per peer, pack-byte and entry budgets (src/memory/sync/quota.ts `DEFAULT_SYNC_QUOTA`). Only the
   * fields given change.
   */
  syncQuota?: Partial<import('../memory/sync/index.js').SyncQuotaLimits>;
  /**
   * Each peer's inbound message and ping rate: a token bucket (default: config.json's `inboundRate`, else
   * a burst of 50, then 10 a second; src/agent/rate-limit.ts `DEFAULT_RATE_LIMIT`).
   */
  inboundRate?: import('./rate-limit.js').RateLimitOptions;
  /** Restarts of the agent's own tor allowed per window before it gives up (default 3 per 5 min). */
  torRestartLimit?: { max: number; windowMs: number };
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
  /** The on-message hook's bounds, or `false` for none. */
  hooks?: false | HookSettings;
  /** Cap on a file sent or received, bytes (default 1 GiB, files-wire.ts DEFAULT_MAX_FILE_BYTES). */
  maxFileBytes?: number;
  /** A received partial file untouched this long is removed (ms; default 7 days, files-store.ts). */
  filePartialMaxAgeMs?: number;
  /**
   * Each peer's inbound message rate, `{"capacity": 50, "refillPerSecond": 10}` by default: a peer that
   * sends faster is refused with `rate-limited` and its outbox retries later, nothing is lost.
   */
  inboundRate?: import('./rate-limit.js').RateLimitOptions;
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
  events: (RuntimeEvent & { at: string })[];
  /** `http://<onion>` when the agent serves A2A. */
  a2a?: string | undefined;
  /** tor's state as the supervisor sees it, and the onion's last self-probe. */
  health: SupervisorStatus;
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

/** Result of `ping`: the session's identity and route, and every round trip. */
export interface PingReport extends Omit<PingResult, 'rttMs'> {
  /** Each ping's round trip, ms, in order. */
  rttsMs: number[];
  rttMs: { min: number; median: number; max: number };
}

export interface AgentRuntime {
  readonly tor: TorHandle;
  readonly node: AgentNode;
  readonly onion: OnionService;
  readonly messenger: Messenger;
  /** File transfer (docs/protocol.md §9). */
  readonly files: import('./files-service.js').FileService;
  readonly discovery: Discovery;
  /** The A2A service, when started with `a2a`. */
  readonly a2a: import('../a2a/serve.js').AgentA2a | null;
  readonly metrics: AgentMetrics;
  readonly supervisor: Supervisor;
  status(): RuntimeStatus;
  /**
   * `peer`: an onion or a contact's alias (here and in `connect`, `syncMany`). `timeoutMs` bounds the first
   * delivery attempt (default 30 s); after it the message is queued.
   */
  send(peer: string, message: string | MessageInput, options?: AbortOptions): Promise<SendResult>;
  /** Sends the file at `path` (opened by this process) to `peer`, resuming after drops; see files-send.ts. */
  sendFile(
    peer: string,
    path: string,
    options?: import('./files-send.js').SendFileOptions,
  ): Promise<import('./files-send.js').SendFileResult>;
  inbox(filter?: InboxFilter): Promise<ReceivedMessage[]>;
  messages(options?: Omit<InboxFilter, 'limit'> & { signal?: AbortSignal }): AsyncIterable<ReceivedMessage>;
  connect(peer: string, options?: { signal?: AbortSignal; fresh?: boolean }): Promise<PingResult>;
  /** `count` pings over one session: each round trip, and the route as `connect` reports it. */
  ping(
    peer: string,
    options?: { signal?: AbortSignal; count?: number; fresh?: boolean },
  ): Promise<PingReport>;
  /** Messages waiting for an ack, oldest first. */
  outbox(): PendingMessage[];
  retryQueued(
    id: string,
    options?: { signal?: AbortSignal },
  ): Promise<{
    id: string;
    /** `failed` and `sending` (still running after the wait; it goes on) are for file entries only. */
    status: 'delivered' | 'queued' | 'refused' | 'failed' | 'sending';
    error?: { code: string; message: string };
  }>;
  dropQueued(id: string): Promise<{ id: string; to: string }>;
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
