import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../../src/_fs.js';
import { Agent } from '../../src/agent/agent.js';
import { serveAgent } from '../../src/agent/daemon.js';
import { ipcCall, startIpcServer } from '../../src/agent/ipc.js';
import { MmogitError } from '../../src/errors.js';
import { endProgress, note } from '../output.js';
import { showProgress } from './_progress.js';

/** The one mesh process per config dir answers `mesh stop` / `mesh status` here (0600, like daemon.sock). */
export function meshSocket(configDir: string): string {
  return join(configDir, 'mesh.sock');
}

export function meshState(configDir: string): string {
  return join(configDir, 'mesh.json');
}

/** Whether a mesh process answers for this config dir. */
export async function meshRunning(configDir: string): Promise<boolean> {
  try {
    await ipcCall(meshSocket(configDir), 'ping', {}, { timeoutMs: 3_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The agent a mesh command runs on: with tor, the agent daemon in this process (its IPC answers `tor status`,
 * `send`, …); without, the agent opened offline (TCP links only).
 */
export async function meshAgent(
  configDir: string,
  options: { tor: boolean; network?: string | undefined; timeoutMs?: number },
): Promise<{ agent: Agent; stop: () => Promise<void> }> {
  if (!options.tor) {
    const agent = await Agent.open({ configDir });
    return { agent, stop: () => agent.close() };
  }
  const network = options.network ?? process.env.MMOGIT_TOR_NETWORK;
  const served = await serveAgent({
    configDir,
    ...(network ? { network } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    onProgress: (p) => showProgress(p),
  });
  try {
    await served.ready;
  } catch (e) {
    await served.stop();
    throw e;
  }
  endProgress();
  return { agent: served.agent, stop: () => served.stop() };
}

/**
 * Serves `mesh.sock` until `mesh stop`, SIGINT or SIGTERM, with `state` in `mesh.json`; then runs `stop`.
 * Prints `out` (one JSON document with `--json`) once serving.
 */
export async function serveMeshProcess(
  configDir: string,
  state: Record<string, unknown>,
  status: () => Record<string, unknown>,
  stop: () => Promise<void>,
): Promise<void> {
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const server = await startIpcServer(meshSocket(configDir), {
    ping: async () => ({ pid: process.pid }),
    status: async () => ({ pid: process.pid, ...state, ...status() }),
    stop: async () => {
      setTimeout(resolveDone, 10).unref();
      return { stopping: true, pid: process.pid };
    },
  });
  await writeFileDurable(
    meshState(configDir),
    `${JSON.stringify({ pid: process.pid, ...state }, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
  const onSignal = () => resolveDone();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    note('mesh: stopping');
    await stop().catch((e) => note(`mesh: stop: ${(e as Error).message}`));
    await server.close();
    await rm(meshState(configDir), { force: true });
  }
}

export function refuseIfRunning(running: boolean, configDir: string): void {
  if (running) {
    throw new MmogitError(
      'ERR_DAEMON_RUNNING',
      `a mesh process already runs for ${configDir} (see \`mmogit mesh status\`)`,
    );
  }
}

/** `HOST:PORT` of `--listen`. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : -1;
  if (!m || port < 0 || port > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `--listen: "${value}" is not HOST:PORT`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}
