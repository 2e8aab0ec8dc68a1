/**
 * The tor handle's public shape: its default bounds, the files it keeps, its events and the options of
 * {@link startTor} (spawn mode) and {@link attachTor} (attach mode). Types and constants only.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import type { MmogitError } from '../errors.js';
import type { TorController } from './control/index.js';
import type { PublishedOnionEntry } from './onion-service.js';
import type { TorNetworkInfo } from './testnet.js';

/** Default bound on {@link startTor}: start, control connection and bootstrap (public network: minutes). */
export const DEFAULT_TOR_START_TIMEOUT_MS = 180_000;
/** Default bound on {@link attachTor}. */
export const DEFAULT_TOR_ATTACH_TIMEOUT_MS = 30_000;
/** How long {@link TorHandle.stop} waits for tor to exit before SIGKILL. */
export const DEFAULT_TOR_STOP_TIMEOUT_MS = 5_000;
/** Restarts allowed within {@link RESTART_WINDOW_MS} before the handle gives up. */
export const MAX_TOR_RESTARTS = 3;
/** The window in which {@link MAX_TOR_RESTARTS} is counted. */
export const RESTART_WINDOW_MS = 5 * 60_000;
/** How often an attached handle tries to reach the user's tor again after losing it. */
export const ATTACH_RETRY_MS = 1_000;

/** Files the daemon keeps in the data directory next to tor's own. */
export const DAEMON_FILES = {
  torrc: 'torrc',
  defaults: 'torrc-defaults',
  controlPort: 'control-port',
  log: 'notice.log',
} as const;

/** One bootstrap step (STATUS_CLIENT BOOTSTRAP, control-spec §4.1.10). */
export interface TorProgress {
  progress: number;
  summary: string;
  tag: string;
  /** Set when tor reports a problem; with `recommendation: 'warn'` show it to the user, but tor keeps trying. */
  warning?: string;
  recommendation?: string;
}

/** Emitted when tor exits while the handle is running. */
export interface TorDiedEvent {
  code: number | null;
  signal: string | null;
  /** Whether a restart follows (spawn mode, attempts left). */
  willRestart: boolean;
}

/** Emitted while an attached handle waits for the user's tor to come back (once per attempt). */
export interface TorWaitingEvent {
  /** The control target, as the user gave it. */
  control: string;
  /** When the tor was lost, ms since the epoch. */
  since: number;
  attempt: number;
  /** Why the last attempt failed (absent before the first). */
  error?: string;
}

/** Emitted after a successful restart (spawn mode) or reconnection (attach mode). */
export interface TorRestartedEvent {
  attempt: number;
  pid: number;
  socksPort: number;
  /** ServiceIDs published again. */
  republished: string[];
  /** ServiceIDs that could not be published again, with the error code. */
  failed: { serviceId: string; code: string }[];
}

export interface TorHandleEvents {
  progress: [TorProgress];
  died: [TorDiedEvent];
  restarted: [TorRestartedEvent];
  /** Attach mode: the user's tor is gone and the handle is trying to reach it again. */
  waiting: [TorWaitingEvent];
  /** A restart failed or attempts ran out: the handle is stopped. */
  'restart-failed': [MmogitError];
}

/** What the agent uses, in either mode. */
export interface TorHandle {
  readonly mode: 'spawn' | 'attach';
  /** The current control connection (a new one after a restart). */
  readonly controller: TorController;
  readonly socksHost: string;
  readonly socksPort: number;
  readonly controlPort?: number;
  readonly pid?: number;
  readonly dataDir?: string;
  /** False after {@link stop}, after an attached tor went away, or when restarts ran out. */
  readonly running: boolean;
  on<K extends keyof TorHandleEvents>(event: K, listener: (...args: TorHandleEvents[K]) => void): this;
  off<K extends keyof TorHandleEvents>(event: K, listener: (...args: TorHandleEvents[K]) => void): this;
  once<K extends keyof TorHandleEvents>(event: K, listener: (...args: TorHandleEvents[K]) => void): this;
  /** Publishes every onion of this handle again (done automatically after a restart). Returns their ids. */
  republish(options?: AbortOptions): Promise<string[]>;
  /** Graceful stop; in spawn mode tor exits. Idempotent. */
  stop(options?: AbortOptions): Promise<void>;
  /** @internal used by publishOnion */
  readonly onions: Set<PublishedOnionEntry>;
}

export interface StartTorOptions {
  /** tor's DataDirectory (keep it: the consensus cache makes the next start fast). Created 0700. */
  dataDir: string;
  /** A private network to join (from {@link loadNetwork} / {@link testnetUp}). */
  network?: TorNetworkInfo;
  useBridges?: boolean;
  /** Bridge lines (`obfs4 IP:port FP cert=… iat-mode=0`); default the network's bridges, if any. */
  bridges?: string[];
  torBinary?: string;
  /** Fixed ports instead of `auto`. */
  socksPort?: number;
  controlPort?: number;
  /** Further torrc lines. */
  extraTorrc?: string[];
  /** With `network`: preload the TCP_NODELAY shim (nodelay.ts; default true, `MMOGIT_TOR_NODELAY=0` too). */
  nodelay?: boolean;
  /** A torrc template instead of the package's `torrc.template`. */
  torrcTemplate?: string;
  /** Restart tor when it dies (default true). */
  restart?: boolean;
  /** Restarts allowed per window before the handle gives up (default {@link MAX_TOR_RESTARTS} per {@link RESTART_WINDOW_MS}). */
  restartLimit?: { max: number; windowMs: number };
  onProgress?: (p: TorProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface AttachTorOptions {
  /** `host:port`, `[v6]:port`, `unix:/path` or `/path/to/socket` (Debian: `/run/tor/control`). */
  control: string;
  password?: string;
  cookieFile?: string;
  /** When the user's tor goes away, keep trying to reach it again every {@link ATTACH_RETRY_MS} (default true). */
  reconnect?: boolean;
  onProgress?: (p: TorProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}
