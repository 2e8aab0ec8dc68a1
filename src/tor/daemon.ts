/**
 * The agent's tor, in either mode:
 * - **spawn** ({@link startTor}): runs the system `tor` with a torrc rendered from `torrc.template`, takes
 *   ownership of it (tor exits when we do), waits for bootstrap, and restarts it (bounded) if it dies,
 *   re-publishing the onions published through {@link publishOnion}.
 * - **attach** ({@link attachTor}): uses a tor the user already runs, through its control port or socket,
 *   touching nothing but our own ephemeral onions.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { abortReason, MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import {
  type BootstrapStatus,
  type ControlTarget,
  readControlPortFile,
  TorController,
} from './control/index.js';
import { type PublishedOnionEntry, republishEntry } from './onion-service.js';
import type { TorNetworkInfo } from './testnet.js';
import {
  bridgeTorrcLines,
  findExecutable,
  findTransportBinaries,
  loadTorrcTemplate,
  renderAgentTorrc,
} from './torrc.js';

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

/** Emitted after a successful restart. */
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
  republish(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<string[]>;
  /** Graceful stop; in spawn mode tor exits. Idempotent. */
  stop(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
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
  /** A torrc template instead of the package's `torrc.template`. */
  torrcTemplate?: string;
  /** Restart tor when it dies (default true). */
  restart?: boolean;
  onProgress?: (p: TorProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface AttachTorOptions {
  /** `host:port`, `[v6]:port`, `unix:/path` or `/path/to/socket` (Debian: `/run/tor/control`). */
  control: string;
  password?: string;
  cookieFile?: string;
  onProgress?: (p: TorProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

function toProgress(s: BootstrapStatus): TorProgress {
  return {
    progress: s.progress,
    summary: s.summary,
    tag: s.tag,
    ...(s.warning !== undefined ? { warning: s.warning } : {}),
    ...(s.recommendation !== undefined ? { recommendation: s.recommendation } : {}),
  };
}

/** Parses `--tor-control`: a TCP `host:port` or a Unix socket path. */
export function parseControlTarget(control: string): ControlTarget {
  const s = control.trim();
  if (s.startsWith('unix:')) return { path: s.slice(5) };
  if (s.startsWith('/') || s.startsWith('./')) return { path: s };
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `tor control must be host:port or a socket path: "${control}"`,
    );
  }
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** Events every handle keeps subscribed: bootstrap steps and onion descriptor uploads. */
const HANDLE_EVENTS = ['STATUS_CLIENT', 'HS_DESC'];

abstract class BaseHandle extends EventEmitter implements TorHandle {
  abstract readonly mode: 'spawn' | 'attach';
  readonly onions = new Set<PublishedOnionEntry>();
  protected ctl: TorController | undefined;
  protected socks = { host: '127.0.0.1', port: 0 };
  protected stopped = false;

  get controller(): TorController {
    if (!this.ctl) throw new MmogitError('ERR_TOR_CONTROL_CLOSED', 'tor is not connected');
    return this.ctl;
  }
  get socksHost(): string {
    return this.socks.host;
  }
  get socksPort(): number {
    return this.socks.port;
  }
  get running(): boolean {
    return !this.stopped;
  }

  override on<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  /** Connects the controller's events, reads the SOCKS listener, and waits for bootstrap. */
  protected async settle(
    ctl: TorController,
    onProgress: ((p: TorProgress) => void) | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    await ctl.setEvents(HANDLE_EVENTS, { signal });
    // A problem flagged RECOMMENDATION=warn is shown, not acted on: tor keeps retrying by itself, and
    // restarting it would only reset its backoff (the restart loops other apps are known for).
    await ctl.waitForBootstrap({
      signal,
      onWarning: 'continue',
      onProgress: (s) => {
        const p = toProgress(s);
        onProgress?.(p);
        this.emit('progress', p);
      },
    });
    const listeners = await ctl.socksListeners({ signal });
    const first = listeners[0];
    if (!first) {
      throw new MmogitError('ERR_TOR_START_FAILED', 'tor has no SocksPort (net/listeners/socks is empty)');
    }
    this.socks = {
      host: first.host === '0.0.0.0' || first.host === '::' ? '127.0.0.1' : first.host,
      port: first.port,
    };
  }

  async republish(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string[]> {
    const out: string[] = [];
    for (const entry of this.onions) {
      await republishEntry(this.controller, entry, options);
      out.push(entry.serviceId);
    }
    return out;
  }

  abstract stop(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
}

class SpawnedTor extends BaseHandle {
  readonly mode = 'spawn' as const;
  readonly dataDir: string;
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private tail: string[] = [];
  private portInUse: string | undefined;
  private restarts: number[] = [];
  private fixedPorts: { socks?: number; control?: number };
  private control = 0;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly tor: string,
    private readonly torrcFor: (ports: { socks?: number; control?: number }) => string,
    dataDir: string,
    ports: { socks?: number; control?: number },
    private readonly autoRestart: boolean,
  ) {
    super();
    this.dataDir = dataDir;
    this.fixedPorts = ports;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get controlPort(): number {
    return this.control;
  }

  /** Spawns tor, connects, takes ownership, waits for bootstrap. Cleans up after itself on failure. */
  async launch(
    ports: { socks?: number; control?: number },
    onProgress: ((p: TorProgress) => void) | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const portFile = join(this.dataDir, DAEMON_FILES.controlPort);
    await rm(portFile, { force: true });
    await writeFile(join(this.dataDir, DAEMON_FILES.torrc), this.torrcFor(ports), { mode: 0o600 });
    await writeFile(join(this.dataDir, DAEMON_FILES.defaults), '', { mode: 0o600 });
    this.tail = [];
    this.portInUse = undefined;
    this.log ??= createWriteStream(join(this.dataDir, DAEMON_FILES.log), { flags: 'a', mode: 0o600 });

    // --defaults-torrc: an empty file keeps the system's torrc-defaults out (control-spec-independent).
    const child = spawn(
      this.tor,
      [
        '--defaults-torrc',
        join(this.dataDir, DAEMON_FILES.defaults),
        '-f',
        join(this.dataDir, DAEMON_FILES.torrc),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    const spawnFailed = new Promise<never>((_, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT' || err.code === 'EACCES'
            ? new MmogitError('ERR_TOR_NOT_FOUND', `cannot run tor (${this.tor}): ${err.code}`, {
                cause: err,
              })
            : new MmogitError('ERR_TOR_START_FAILED', `cannot run tor: ${err.message}`, { cause: err }),
        );
      });
    });
    this.exited = new Promise<void>((r) => child.once('exit', () => r()));
    const exitedEarly = new Promise<never>((_, reject) => {
      child.once('exit', (code, sig) => reject(this.startError(code, sig)));
    });
    spawnFailed.catch(() => {});
    exitedEarly.catch(() => {});
    const onOutput = (chunk: Buffer) => {
      this.log?.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
        const m = /Could not bind to (\S+): Address already in use/.exec(line);
        if (m) this.portInUse = m[1]!;
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);

    try {
      const race = <T>(p: Promise<T>) => Promise.race([p, spawnFailed, exitedEarly]);
      const target = await race(readControlPortFile(portFile, { signal, timeoutMs: 60_000 }));
      this.control = target.port;
      const ctl = await race(TorController.connect(target, { signal }));
      this.ctl = ctl;
      await race(ctl.authenticate({ signal, cookieFile: join(this.dataDir, 'control_auth_cookie') }));
      // control-spec §3.23: from now on tor exits when this connection closes (i.e. when we exit).
      await race(ctl.takeOwnership({ signal }));
      await race(this.settle(ctl, onProgress, signal));
    } catch (e) {
      await this.kill();
      throw signal.aborted ? abortReason(signal, 'tor start') : e;
    }
    // Keep the ports for a restart, so dialers holding the SOCKS port keep working.
    this.fixedPorts = { socks: this.socks.port, control: this.control };
    child.once('exit', (code, sig) => {
      if (this.child === child) void this.onDeath(code, sig);
    });
  }

  private startError(code: number | null, sig: NodeJS.Signals | null): MmogitError {
    const log = this.tail.slice(-12).join('\n');
    if (this.portInUse) {
      return new MmogitError(
        'ERR_PORT_IN_USE',
        `tor could not bind ${this.portInUse}: address already in use`,
        {
          details: { address: this.portInUse, log },
        },
      );
    }
    return new MmogitError('ERR_TOR_START_FAILED', `tor exited during start-up (${code ?? sig}):\n${log}`, {
      details: { code, signal: sig, log },
    });
  }

  private async onDeath(code: number | null, sig: NodeJS.Signals | null): Promise<void> {
    if (this.stopped) return;
    const old = this.ctl;
    this.ctl = undefined;
    void old?.close().catch(() => {});
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    const willRestart = this.autoRestart && this.restarts.length < MAX_TOR_RESTARTS;
    this.emit('died', { code, signal: sig, willRestart } satisfies TorDiedEvent);
    if (!willRestart) {
      this.stopped = true;
      this.emit(
        'restart-failed',
        new MmogitError('ERR_TOR_START_FAILED', `tor died (${code ?? sig}) and restarts are exhausted`, {
          details: { restarts: this.restarts.length },
        }),
      );
      return;
    }
    this.restarts.push(now);
    const attempt = this.restarts.length;
    const signal = withTimeout(undefined, DEFAULT_TOR_START_TIMEOUT_MS, 'tor restart');
    try {
      try {
        await this.launch(this.fixedPorts, undefined, signal);
      } catch (e) {
        if (!(e instanceof MmogitError && e.code === 'ERR_PORT_IN_USE') || this.stopped) throw e;
        // Someone took our old port in between: take new ones.
        await this.launch({}, undefined, signal);
      }
      if (this.stopped) {
        await this.kill();
        return;
      }
      const republished: string[] = [];
      const failed: { serviceId: string; code: string }[] = [];
      for (const entry of this.onions) {
        try {
          await republishEntry(this.controller, entry, { signal });
          republished.push(entry.serviceId);
        } catch (e) {
          failed.push({ serviceId: entry.serviceId, code: (e as MmogitError).code ?? 'ERR_INTERNAL' });
        }
      }
      this.emit('restarted', {
        attempt,
        pid: this.child?.pid ?? 0,
        socksPort: this.socks.port,
        republished,
        failed,
      } satisfies TorRestartedEvent);
    } catch (e) {
      if (this.stopped) return;
      this.stopped = true;
      await this.kill();
      this.emit(
        'restart-failed',
        e instanceof MmogitError
          ? e
          : new MmogitError('ERR_TOR_START_FAILED', 'tor restart failed', { cause: e }),
      );
    }
  }

  /** Ends the current child: close the owning connection (tor exits ~0.07 s later), then SIGTERM, SIGKILL. */
  private async kill(timeoutMs = DEFAULT_TOR_STOP_TIMEOUT_MS): Promise<void> {
    const child = this.child;
    const ctl = this.ctl;
    this.ctl = undefined;
    await ctl?.close().catch(() => {});
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = (ms: number) =>
      Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (await gone(Math.min(1_000, timeoutMs))) return;
    child.kill('SIGTERM');
    if (await gone(timeoutMs)) return;
    child.kill('SIGKILL');
    await gone(2_000);
  }

  async stop(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped && (!this.child || this.child.exitCode !== null || this.child.signalCode !== null)) {
      this.log?.end();
      this.log = undefined;
      return;
    }
    this.stopped = true;
    throwIfAborted(options.signal, 'tor stop');
    await this.kill(options.timeoutMs ?? DEFAULT_TOR_STOP_TIMEOUT_MS);
    this.log?.end();
    this.log = undefined;
  }
}

class AttachedTor extends BaseHandle {
  readonly mode = 'attach' as const;
  readonly controlPort: number | undefined;
  readonly pid: number | undefined = undefined;

  constructor(ctl: TorController, target: ControlTarget) {
    super();
    this.ctl = ctl;
    this.controlPort = 'port' in target ? target.port : undefined;
    void ctl.closed.then(() => {
      if (this.stopped) return;
      this.stopped = true;
      this.emit('died', { code: null, signal: null, willRestart: false } satisfies TorDiedEvent);
    });
  }

  async init(onProgress: ((p: TorProgress) => void) | undefined, signal: AbortSignal): Promise<void> {
    await this.settle(this.controller, onProgress, signal);
  }

  async stop(): Promise<void> {
    if (this.stopped && !this.ctl?.isOpen) return;
    this.stopped = true;
    // Our onions are not detached: tor removes them when this connection closes (control-spec §3.27).
    await this.ctl?.close().catch(() => {});
  }
}

/**
 * Starts the agent's own tor (spawn mode) and resolves when it has bootstrapped.
 *
 * @throws `ERR_TOR_NOT_FOUND` (no tor binary), `ERR_PORT_IN_USE` (a fixed port is taken),
 *   `ERR_TOR_START_FAILED` (tor exited; the message quotes its log), `ERR_TOR_AUTH_FAILED`,
 *   `ERR_TIMEOUT` / `ERR_ABORTED`.
 * @example
 * const tor = await startTor({ dataDir: `${configDir}/tor`, onProgress: (p) => bar.update(p.progress) });
 * tor.on('restarted', (e) => log('tor restarted, onions back: %o', e.republished));
 * await tor.stop();
 */
export async function startTor(options: StartTorOptions): Promise<TorHandle> {
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_TOR_START_TIMEOUT_MS, 'tor start');
  const dataDir = resolve(options.dataDir);
  const tor = await findExecutable(options.torBinary ?? 'tor');
  if (!tor) throw new MmogitError('ERR_TOR_NOT_FOUND', `tor binary not found: ${options.torBinary ?? 'tor'}`);
  let bridgeLines: string[] = [];
  if (options.useBridges) {
    const bridges = options.bridges ?? options.network?.bridges ?? [];
    bridgeLines = bridgeTorrcLines(bridges, await findTransportBinaries(bridges));
  }
  const template = await loadTorrcTemplate(options.torrcTemplate);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700); // tor refuses a group/world-readable DataDirectory
  throwIfAborted(signal, 'tor start');

  const torrcFor = (ports: { socks?: number; control?: number }) =>
    renderAgentTorrc(template, {
      dataDir,
      controlPortFile: join(dataDir, DAEMON_FILES.controlPort),
      ownerPid: process.pid,
      socksPort: ports.socks ?? 'auto',
      controlPort: ports.control ?? 'auto',
      networkLines: options.network?.clientTorrc ?? [],
      bridgeLines,
      extraLines: options.extraTorrc ?? [],
    });
  const ports = {
    ...(options.socksPort !== undefined ? { socks: options.socksPort } : {}),
    ...(options.controlPort !== undefined ? { control: options.controlPort } : {}),
  };
  torrcFor(ports); // validate before spawning
  const handle = new SpawnedTor(tor, torrcFor, dataDir, ports, options.restart ?? true);
  await handle.launch(ports, options.onProgress, signal);
  return handle;
}

/**
 * Attaches to a running tor through its control port or socket (attach mode). Authenticates with
 * `password`, or the cookie (SAFECOOKIE preferred), and waits for bootstrap.
 *
 * @throws `ERR_INVALID_ARGUMENT` (bad `control`), `ERR_TOR_CONTROL_CLOSED` (nothing listening),
 *   `ERR_TOR_AUTH_FAILED` / `ERR_TOR_AUTH_UNSUPPORTED`, `ERR_TIMEOUT` / `ERR_ABORTED`.
 * @example
 * const tor = await attachTor({ control: '/run/tor/control' });
 */
export async function attachTor(options: AttachTorOptions): Promise<TorHandle> {
  const target = parseControlTarget(options.control);
  const signal = withTimeout(
    options.signal,
    options.timeoutMs ?? DEFAULT_TOR_ATTACH_TIMEOUT_MS,
    'tor attach',
  );
  const ctl = await TorController.connect(target, { signal });
  try {
    await ctl.authenticate({
      signal,
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.cookieFile !== undefined ? { cookieFile: options.cookieFile } : {}),
    });
    const handle = new AttachedTor(ctl, target);
    await handle.init(options.onProgress, signal);
    return handle;
  } catch (e) {
    await ctl.close().catch(() => {});
    throw e;
  }
}
