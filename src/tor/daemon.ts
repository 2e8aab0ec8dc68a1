/**
 * Starting the agent's tor, in either mode (the handles themselves are in `handle-spawned.ts` and
 * `handle-attached.ts`, their public types in `daemon-types.ts`, re-exported here):
 * - **spawn** ({@link startTor}): runs the system `tor` with a torrc rendered from `torrc.template`, takes
 *   ownership of it (tor exits when we do), waits for bootstrap, and restarts it (bounded) if it dies,
 *   re-publishing the onions published through {@link publishOnion}.
 * - **attach** ({@link attachTor}): uses a tor the user already runs, through its control port or socket,
 *   touching nothing but our own ephemeral onions; when that tor goes away the handle waits for it (`waiting`
 *   events) and publishes the onions again once it is back.
 * @module
 */
import { chmod, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import { type ControlTarget, TorController } from './control/index.js';
import {
  type AttachTorOptions,
  DAEMON_FILES,
  DEFAULT_TOR_ATTACH_TIMEOUT_MS,
  DEFAULT_TOR_START_TIMEOUT_MS,
  type StartTorOptions,
  type TorHandle,
} from './daemon-types.js';
import { AttachedTor } from './handle-attached.js';
import { SpawnedTor } from './handle-spawned.js';
import { nodelayEnv } from './nodelay.js';
import {
  bridgeTorrcLines,
  findExecutable,
  findTransportBinaries,
  loadTorrcTemplate,
  renderAgentTorrc,
} from './torrc.js';

export * from './daemon-types.js';

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
  // Only a private network's tors get the shim: on the public network tor's own socket options stay as they are.
  const env = options.network ? await nodelayEnv(options.nodelay ?? true) : process.env;
  const handle = new SpawnedTor(
    tor,
    torrcFor,
    dataDir,
    ports,
    options.restart ?? true,
    options.restartLimit,
    env,
  );
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
    const handle = new AttachedTor(ctl, target, options);
    await handle.init(options.onProgress, signal);
    return handle;
  } catch (e) {
    await ctl.close().catch(() => {});
    throw e;
  }
}
