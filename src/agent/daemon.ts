import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../_async.js';
import { writeFileDurable } from '../_fs.js';
import { createLogger } from '../_log.js';
import { AbortedError, MmogitError, TimeoutError } from '../errors.js';
import { CONFIG_FILES, resolveConfigDir } from '../identity/store.js';
import { Agent } from './agent.js';
import { messagingHandlers } from './daemon-messaging.js';
import { type IpcCallOptions, type IpcHandler, ipcCall, startIpcServer } from './ipc.js';
import { optionalIntParam, stringArrayParam, stringParam } from './ipc-params.js';
import type { AgentProgress, AgentStartOptions } from './runtime.js';

/**
 * The agent daemon: one process per config dir that owns the agent's tor, onion service and libp2p node, and
 * answers the CLI over a Unix socket (`<configDir>/daemon.sock`, see ipc.ts). `mmogit tor start` spawns it
 * detached; `--foreground` runs {@link serveAgent} in the CLI's own process.
 */

const log = createLogger('mmogit:agent:daemon');

export const DEFAULT_START_TIMEOUT_MS = 180_000;
/** Longest onion parameter (a v3 onion is 62 characters; room for a `.onion`-less or upper-case form). */
const MAX_ONION_PARAM = 128;
/** Longest timeout or lifetime an IPC request may ask for: one day (Node timers cap at ~24.8 days). */
const MAX_TIMEOUT_PARAM_MS = 86_400_000;

export interface DaemonState {
  pid: number;
  onion: string;
  startedAt: string;
  socksPort?: number | undefined;
  controlPort?: number | undefined;
  onionPort?: number | undefined;
  /** `http://<onion>` when the agent serves A2A (`tor start --a2a`). */
  a2a?: string | undefined;
  mode?: string | undefined;
  /** `http://HOST:PORT/metrics` when started with `--metrics`. */
  metrics?: string | undefined;
}

export function socketPath(configDir: string): string {
  return join(configDir, CONFIG_FILES.daemonSocket);
}

/** Calls the daemon of `configDir`. */
export function callDaemon<T>(
  configDir: string,
  method: string,
  params: Record<string, unknown> = {},
  options: IpcCallOptions = {},
): Promise<T> {
  return ipcCall<T>(socketPath(configDir), method, params, options);
}

/** Whether a daemon answers on this config dir's socket. */
export async function daemonRunning(configDir: string): Promise<boolean> {
  try {
    await callDaemon(configDir, 'ping', {}, { timeoutMs: 3_000 });
    return true;
  } catch {
    return false;
  }
}

export interface ServeOptions extends Omit<AgentStartOptions, 'onProgress' | 'signal'> {
  configDir?: string;
  /** Serve Prometheus metrics on this address (`PORT`, `HOST:PORT`; see `parseMetricsAddress`). */
  metricsAddress?: string;
  onProgress?: (p: AgentProgress) => void;
  /** Stops the daemon when aborted. */
  signal?: AbortSignal;
}

export interface ServedAgent {
  agent: Agent;
  /** Resolves when the agent is up (onion published) — rejects if start failed. */
  ready: Promise<DaemonState>;
  /** Resolves when the daemon has stopped (via IPC `stop`, the signal, or a start failure). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs the daemon: opens the IPC socket first (so `tor start` can watch progress), then starts the agent.
 * Refuses with ERR_DAEMON_RUNNING when another daemon already serves this config dir.
 */
export async function serveAgent(options: ServeOptions = {}): Promise<ServedAgent> {
  const configDir = resolveConfigDir(options.configDir);
  if (await daemonRunning(configDir)) {
    throw new MmogitError('ERR_DAEMON_RUNNING', `the mmogit daemon is already running for ${configDir}`);
  }
  const agent = await Agent.open({ configDir });
  // Metrics listen before the agent starts, so a scrape shows tor's bootstrap too.
  const metricsEndpoint = options.metricsAddress
    ? await startMetrics(options.metricsAddress, agent)
    : undefined;
  const metrics = metricsEndpoint?.metrics ?? options.metrics;
  const statePath = join(configDir, CONFIG_FILES.daemonState);
  const watchers = new Set<(p: AgentProgress) => void>();
  let lastProgress: AgentProgress | null = null;
  let startError: unknown = null;

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let stopping: Promise<void> | null = null;
  // A stop during the start (`tor stop`, SIGTERM, a failed `tor start`) aborts it: without this the start went
  // on after the daemon had "stopped" and left tor and the node running with nobody to stop them.
  const starting = new AbortController();

  /** Starts the agent and records the daemon's state file; called once the IPC socket is up. */
  const startAgent = async (): Promise<DaemonState> => {
    try {
      await agent.start({
        ...options,
        signal: options.signal ? AbortSignal.any([options.signal, starting.signal]) : starting.signal,
        ...(metrics ? { metrics } : {}),
        onProgress: (p) => {
          lastProgress = p;
          options.onProgress?.(p);
          for (const w of watchers) w(p);
        },
      });
      const status = agent.net().status();
      const state: DaemonState = {
        pid: process.pid,
        onion: agent.address,
        startedAt: new Date().toISOString(),
        socksPort: status.socksPort,
        controlPort: status.controlPort,
        onionPort: status.onionPort,
        mode: status.torMode,
        ...(status.a2a ? { a2a: status.a2a } : {}),
        ...(metricsEndpoint ? { metrics: metricsEndpoint.server.url } : {}),
      };
      await writeFileDurable(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
      return state;
    } catch (e) {
      startError = e;
      // A failed start ends the daemon; callers of waitReady get the error first.
      setTimeout(() => void stop(), 200).unref();
      throw e;
    }
  };
  // `ready` exists before the socket listens: a `waitReady` that arrives the moment the socket accepts (before
  // startIpcServer has returned) waits for the start instead of answering `null`. The agent itself starts only
  // once the socket is up, so `tor start` sees all of its progress.
  let socketUp!: () => void;
  const ready: Promise<DaemonState> = new Promise<void>((r) => {
    socketUp = r;
  }).then(startAgent);
  ready.catch(() => {}); // observed by waitReady callers and the ServedAgent's owner

  const requireNet = () => {
    if (!agent.running) {
      throw new MmogitError(
        'ERR_DAEMON_NOT_RUNNING',
        'the agent is still starting (see `mmogit tor status`)',
      );
    }
    return agent.net();
  };

  const handlers: Record<string, IpcHandler> = {
    ping: async () => ({ pid: process.pid }),
    status: async () => {
      const net = agent.running ? agent.net().status() : null;
      return {
        running: true,
        ready: agent.running,
        pid: process.pid,
        onion: agent.address,
        bootstrap: net ? net.bootstrap : lastProgress?.phase === 'tor' ? lastProgress.progress : 0,
        socksPort: net?.socksPort ?? null,
        controlPort: net?.controlPort ?? null,
        onionPort: net?.onionPort ?? null,
        listenPort: net?.listenPort ?? null,
        policy: net?.policy ?? null,
        torMode: net?.torMode ?? null,
        peers: net?.peers ?? [],
        outbox: net?.outbox ?? 0,
        events: net?.events ?? [],
        a2a: net?.a2a ?? null,
        health: net?.health ?? null,
        metrics: metricsEndpoint?.server.url ?? null,
        ...(startError ? { error: String((startError as Error).message ?? startError) } : {}),
      };
    },
    waitReady: async (_params, ctx) => {
      if (lastProgress) ctx.progress(lastProgress);
      const watcher = (p: AgentProgress) => ctx.progress(p);
      watchers.add(watcher);
      try {
        return await ready;
      } finally {
        watchers.delete(watcher);
      }
    },
    stop: async () => {
      setTimeout(() => void stop(), 10).unref();
      return { stopping: true };
    },
    ...messagingHandlers(agent, requireNet),
    advertise: async (p, ctx) =>
      requireNet().advertise(stringArrayParam(p, 'services'), {
        ttlMs: optionalIntParam(p, 'ttlMs', { min: 1, max: MAX_TIMEOUT_PARAM_MS }),
        signal: ctx.signal,
      }),
    discover: async (p, ctx) => {
      const service = stringParam(p, 'service', 1024);
      const limit = optionalIntParam(p, 'limit', { min: 1, max: 1_000 }) ?? 20;
      const timeoutMs = optionalIntParam(p, 'timeoutMs', { min: 1, max: MAX_TIMEOUT_PARAM_MS }) ?? 30_000;
      const found: unknown[] = [];
      for await (const ad of requireNet().discover(service, {
        signal: ctx.signal,
        timeoutMs,
        limit,
        onProgress: (e) => ctx.progress(e),
      })) {
        found.push(ad);
        ctx.progress({ phase: 'found', count: found.length });
      }
      return found;
    },
    sync: async (p, ctx) =>
      requireNet().syncMany(stringArrayParam(p, 'peers', MAX_ONION_PARAM), {
        signal: ctx.signal,
        timeoutMs: optionalIntParam(p, 'timeoutMs', { min: 1, max: MAX_TIMEOUT_PARAM_MS }),
        onProgress: (e) => ctx.progress(e),
      }),
  };

  const server = await startIpcServer(socketPath(configDir), handlers);
  socketUp();
  log('daemon %d serving %s', process.pid, configDir);

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      starting.abort(new AbortedError('the daemon is stopping'));
      await ready.catch(() => {}); // a start in progress unwinds what it started first
      try {
        await agent.close();
      } catch (e) {
        log('stop: %s', e instanceof Error ? e.message : String(e));
      }
      await server.close();
      await metricsEndpoint?.server.close();
      await rm(statePath, { force: true });
      resolveStopped();
    })();
    return stopping;
  }
  options.signal?.addEventListener('abort', () => void stop(), { once: true });

  return { agent, ready, stopped, stop };
}

/**
 * The daemon's Prometheus endpoint on `address`: the agent's registry (with Node's process metrics) merged with
 * the registry its mesh clients count into.
 */
async function startMetrics(address: string, agent: Agent) {
  const [{ AgentMetrics, parseMetricsAddress, serveMetrics }, { MeshMetrics }] = await Promise.all([
    import('../metrics/index.js'),
    import('../mesh/metrics.js'),
  ]);
  const parsed = parseMetricsAddress(address);
  const metrics = new AgentMetrics({ processMetrics: true });
  const mesh = new MeshMetrics();
  agent.mesh.useMetrics(mesh);
  const server = await serveMetrics({ address: parsed, registries: [metrics.registry, mesh.registry] });
  log('metrics on %s%s', server.url, parsed.loopback ? '' : ' (not loopback: reachable from the network)');
  return { metrics, server };
}

/** How long {@link stopDaemon} waits for the daemon process to exit before killing it. */
export const DEFAULT_STOP_WAIT_MS = 30_000;

/**
 * Asks the daemon of `configDir` to stop and waits (bounded) until its process is gone, so a new start right
 * after works; kills it when it does not exit in time. Stopping a daemon that is not running is fine.
 */
export async function stopDaemon(
  configDir: string,
  options: { timeoutMs?: number } = {},
): Promise<{ stopped: boolean; pid?: number; killed?: boolean }> {
  if (!(await daemonRunning(configDir))) return { stopped: false };
  const { pid } = await callDaemon<{ pid: number }>(configDir, 'ping');
  await callDaemon(configDir, 'stop').catch(() => {});
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_STOP_WAIT_MS);
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return { stopped: true, pid };
    }
    await sleep(50);
  }
  process.kill(pid, 'SIGKILL');
  return { stopped: true, pid, killed: true };
}

const PROGRESS_PHASES: readonly string[] = ['tor', 'onion', 'node', 'dht', 'ready'];

/** A progress line from the daemon's socket that has the shape of an {@link AgentProgress} phase. */
function isAgentProgress(p: Record<string, unknown>): p is AgentProgress {
  return typeof p.phase === 'string' && PROGRESS_PHASES.includes(p.phase);
}

export interface SpawnDaemonOptions {
  configDir: string;
  /** CLI flags passed through to `mmogit daemon`. */
  args: string[];
  /**
   * Written to the daemon's stdin, which is then closed: how a secret (a control-port password) reaches it
   * without appearing in its command line, which every local user can read in `/proc/<pid>/cmdline`.
   */
  stdin?: string;
  onProgress?: (p: AgentProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Starts `mmogit daemon` detached (its output in `<configDir>/daemon.log`) and waits until it reports ready,
 * relaying its progress. If the daemon dies before that, the error is the last line of its log. If the wait
 * fails (timeout, abort, a bad answer), the daemon it spawned is stopped before the error is thrown: a failed
 * start never leaves a daemon running behind it.
 */
export async function spawnDaemon(options: SpawnDaemonOptions): Promise<DaemonState> {
  const { configDir } = options;
  if (await daemonRunning(configDir)) {
    throw new MmogitError('ERR_DAEMON_RUNNING', `the mmogit daemon is already running for ${configDir}`);
  }
  const logPath = join(configDir, 'daemon.log');
  const fd = openSync(logPath, 'a', 0o600);
  const binary = new URL('../../../bin/mmogit.js', import.meta.url);
  const child = spawn(
    process.execPath,
    [binary.pathname, 'daemon', '--config-dir', configDir, ...options.args],
    { detached: true, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', fd, fd], env: process.env },
  );
  closeSync(fd);
  if (options.stdin !== undefined) {
    child.stdin?.on('error', () => {}); // a daemon that dies at once is reported below, from its log
    child.stdin?.end(options.stdin);
  }
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? 1;
  });
  child.unref();

  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  const lastLogLine = () => {
    try {
      const lines = readFileSync(logPath, 'utf8').trim().split('\n');
      return lines[lines.length - 1] ?? '';
    } catch {
      return '';
    }
  };
  try {
    const state = await waitForDaemon(configDir, deadline, () => exited !== null, lastLogLine, options);
    if (typeof state?.onion !== 'string') {
      throw new MmogitError('ERR_DAEMON_IPC', 'the daemon answered waitReady without its state');
    }
    return state;
  } catch (e) {
    if (exited === null) {
      child.kill('SIGTERM'); // the daemon stops its agent (and tor) on SIGTERM
      const until = Date.now() + DEFAULT_STOP_WAIT_MS;
      while (exited === null && Date.now() < until) await sleep(50);
      if (exited === null) child.kill('SIGKILL');
    }
    throw e;
  }
}

/** Polls for the spawned daemon's socket and waits on `waitReady` until `deadline`. */
async function waitForDaemon(
  configDir: string,
  deadline: number,
  hasExited: () => boolean,
  lastLogLine: () => string,
  options: SpawnDaemonOptions,
): Promise<DaemonState> {
  const logPath = join(configDir, 'daemon.log');
  // The socket appears within milliseconds of the process starting; poll for it (bounded).
  for (let attempt = 0; ; attempt++) {
    if (hasExited()) {
      throw new MmogitError('ERR_TOR_START_FAILED', `the daemon exited during start: ${lastLogLine()}`, {
        details: { log: logPath },
      });
    }
    try {
      return await callDaemon<DaemonState>(
        configDir,
        'waitReady',
        {},
        {
          timeoutMs: Math.max(1_000, deadline - Date.now()),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onProgress
            ? {
                onProgress: (p) => {
                  if (isAgentProgress(p)) options.onProgress?.(p);
                },
              }
            : {}),
        },
      );
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_DAEMON_NOT_RUNNING' && (Date.now() > deadline || attempt > 200)) {
        // It was spawned but never answered: that is a timeout, not "not running".
        throw new TimeoutError('daemon start: the daemon did not open its socket in time', {
          details: { log: logPath },
        });
      }
      if (code !== 'ERR_DAEMON_NOT_RUNNING') {
        if (code === 'ERR_DAEMON_IPC' && hasExited()) {
          throw new MmogitError('ERR_TOR_START_FAILED', `the daemon exited during start: ${lastLogLine()}`);
        }
        throw e;
      }
      await sleep(50);
    }
  }
}
