import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import { CONFIG_FILES, resolveConfigDir, writeFileAtomic } from '../identity/store.js';
import { Agent } from './agent.js';
import { type IpcCallOptions, type IpcHandler, ipcCall, startIpcServer } from './ipc.js';
import type { AgentProgress, AgentStartOptions } from './runtime.js';

/**
 * The agent daemon: one process per config dir that owns the agent's tor, onion service and libp2p node, and
 * answers the CLI over a Unix socket (`<configDir>/daemon.sock`, see ipc.ts). `mmogit tor start` spawns it
 * detached; `--foreground` runs {@link serveAgent} in the CLI's own process.
 */

const log = createLogger('mmogit:agent:daemon');

export const DEFAULT_START_TIMEOUT_MS = 180_000;

export interface DaemonState {
  pid: number;
  onion: string;
  startedAt: string;
  socksPort?: number | undefined;
  controlPort?: number | undefined;
  onionPort?: number | undefined;
  mode?: string | undefined;
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
  const statePath = join(configDir, CONFIG_FILES.daemonState);
  const watchers = new Set<(p: AgentProgress) => void>();
  let lastProgress: AgentProgress | null = null;
  let startError: unknown = null;

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let stopping: Promise<void> | null = null;

  /** Starts the agent and records the daemon's state file; called once the IPC socket is up. */
  const startAgent = async (): Promise<DaemonState> => {
    try {
      await agent.start({
        ...options,
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
      };
      await writeFileAtomic(statePath, `${JSON.stringify(state, null, 2)}\n`, 0o600);
      return state;
    } catch (e) {
      startError = e;
      // A failed start ends the daemon; callers of waitReady get the error first.
      setTimeout(() => void stop(), 200).unref();
      throw e;
    }
  };
  // Assigned right after the socket listens, before any connection can be handled.
  let ready!: Promise<DaemonState>;

  const requireNet = () => {
    if (!agent.running) {
      throw new MmogitError(
        'ERR_DAEMON_NOT_RUNNING',
        'the agent is still starting (see `mmogit tor status`)',
      );
    }
    return agent.net();
  };
  const str = (v: unknown, name: string): string => {
    if (typeof v !== 'string' || v === '') throw new MmogitError('ERR_INVALID_ARGUMENT', `missing ${name}`);
    return v;
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
        ...(startError ? { error: String((startError as Error).message ?? startError) } : {}),
      };
    },
    waitReady: async (_params, ctx) => {
      if (lastProgress) ctx.progress(lastProgress as unknown as Record<string, unknown>);
      const watcher = (p: AgentProgress) => ctx.progress(p as unknown as Record<string, unknown>);
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
    send: async (p, ctx) =>
      requireNet().send(str(p.onion, 'onion'), str(p.text, 'text'), { signal: ctx.signal }),
    inbox: async (p) => requireNet().inbox({ limit: typeof p.limit === 'number' ? p.limit : undefined }),
    connect: async (p, ctx) => requireNet().connect(str(p.onion, 'onion'), { signal: ctx.signal }),
    advertise: async (p, ctx) =>
      requireNet().advertise(Array.isArray(p.services) ? p.services.map(String) : [], {
        ttlMs: typeof p.ttlMs === 'number' ? p.ttlMs : undefined,
        signal: ctx.signal,
      }),
    discover: async (p, ctx) => {
      const found: unknown[] = [];
      const limit = typeof p.limit === 'number' ? p.limit : 20;
      const timeoutMs = typeof p.timeoutMs === 'number' ? p.timeoutMs : 30_000;
      for await (const ad of requireNet().discover(str(p.service, 'service'), {
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
      requireNet().syncMany(Array.isArray(p.peers) ? p.peers.map(String) : [], {
        signal: ctx.signal,
        timeoutMs: typeof p.timeoutMs === 'number' ? p.timeoutMs : undefined,
        onProgress: (e) => ctx.progress(e),
      }),
  };

  const server = await startIpcServer(socketPath(configDir), handlers);
  ready = startAgent();
  ready.catch(() => {}); // observed by waitReady callers and the ServedAgent's owner
  log('daemon %d serving %s', process.pid, configDir);

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      try {
        await agent.close();
      } catch (e) {
        log('stop: %s', e instanceof Error ? e.message : String(e));
      }
      await server.close();
      await rm(statePath, { force: true });
      resolveStopped();
    })();
    return stopping;
  }
  options.signal?.addEventListener('abort', () => void stop(), { once: true });

  return { agent, ready, stopped, stop };
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
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(pid, 'SIGKILL');
  return { stopped: true, pid, killed: true };
}

export interface SpawnDaemonOptions {
  configDir: string;
  /** CLI flags passed through to `mmogit daemon`. */
  args: string[];
  onProgress?: (p: AgentProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Starts `mmogit daemon` detached (its output in `<configDir>/daemon.log`) and waits until it reports ready,
 * relaying its progress. If the daemon dies before that, the error is the last line of its log.
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
    { detached: true, stdio: ['ignore', fd, fd], env: process.env },
  );
  closeSync(fd);
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
  // The socket appears within milliseconds of the process starting; poll for it (bounded).
  for (let attempt = 0; ; attempt++) {
    if (exited !== null) {
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
            ? { onProgress: (p) => options.onProgress?.(p as unknown as AgentProgress) }
            : {}),
        },
      );
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ERR_DAEMON_NOT_RUNNING' || Date.now() > deadline || attempt > 200) {
        if (code === 'ERR_DAEMON_IPC' && exited !== null) {
          throw new MmogitError('ERR_TOR_START_FAILED', `the daemon exited during start: ${lastLogLine()}`);
        }
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
