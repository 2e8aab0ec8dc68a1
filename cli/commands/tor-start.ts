import { type DaemonState, type ServeOptions, serveAgent, spawnDaemon } from '../../src/agent/daemon.js';
import type { TransportPolicy } from '../../src/agent/runtime.js';
import { AbortedError, MmogitError } from '../../src/errors.js';
import { loadIdentity } from '../../src/identity/store.js';
import { loadNetwork } from '../../src/tor/testnet-network.js';
import { parseTarget } from '../../src/transport/addr.js';
import { parseTimeoutMs } from '../_numbers.js';
import { terminalSafe } from '../_terminal-safe.js';
import { type CommandResult, endProgress, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { showProgress } from './_progress.js';

export interface TorStartArgs extends GlobalOptions {
  network?: string;
  torControl?: string;
  torPassword?: string;
  useBridges?: boolean;
  policy?: TransportPolicy;
  allowClassical?: boolean;
  a2a?: boolean;
  bootstrap?: string[];
  foreground?: boolean;
  timeout?: string;
  /** `--metrics PORT|HOST:PORT`: the Prometheus endpoint. */
  metrics?: string;
}

/** The agent start options these flags ask for (shared by `--foreground` and `mmogit daemon`). */
export function startOptions(
  args: TorStartArgs & { networkBootstrap?: boolean },
): Omit<ServeOptions, 'configDir'> {
  const network = args.network ?? process.env.MMOGIT_TOR_NETWORK;
  return {
    ...(network ? { network } : {}),
    ...(args.torControl ? { torControl: args.torControl } : {}),
    ...(args.torPassword ? { torPassword: args.torPassword } : {}),
    ...(args.useBridges ? { useBridges: true } : {}),
    ...(args.policy ? { policy: args.policy } : {}),
    ...(args.allowClassical ? { allowClassical: true } : {}),
    ...(args.a2a ? { a2a: true } : {}),
    ...(args.bootstrap ? { bootstrap: args.bootstrap } : {}),
    ...(args.networkBootstrap === false ? { networkBootstrap: false } : {}),
    ...(args.metrics !== undefined ? { metricsAddress: args.metrics } : {}),
  };
}

/** The daemon flags, as `mmogit daemon` takes them. */
export function daemonArgs(args: TorStartArgs): string[] {
  const out: string[] = [];
  const network = args.network ?? process.env.MMOGIT_TOR_NETWORK;
  if (network) out.push('--network', network);
  if (args.torControl) out.push('--tor-control', args.torControl);
  // Never on the daemon's command line (readable by every local user): spawnDaemon writes it to its stdin.
  if (args.torPassword) out.push('--tor-password-stdin');
  if (args.useBridges) out.push('--use-bridges');
  if (args.policy) out.push('--policy', args.policy);
  if (args.allowClassical) out.push('--allow-classical');
  if (args.a2a) out.push('--a2a');
  for (const b of args.bootstrap ?? []) out.push('--bootstrap', b);
  if (args.metrics !== undefined) out.push('--metrics', args.metrics);
  if (args.verbose) out.push('-v');
  return out;
}

function result(state: DaemonState): CommandResult {
  return {
    data: {
      onion: state.onion,
      pid: state.pid,
      socksPort: state.socksPort ?? null,
      controlPort: state.controlPort ?? null,
      ...(state.a2a ? { a2a: state.a2a } : {}),
      ...(state.metrics ? { metrics: state.metrics } : {}),
    },
    human: state.onion,
  };
}

/** Refuses a bad `--metrics` before anything starts; warns when it is not a loopback address. */
export async function checkMetricsFlag(value: string): Promise<void> {
  const { parseMetricsAddress } = await import('../../src/metrics/server.js');
  const address = parseMetricsAddress(value);
  if (!address.loopback) {
    note(`warning: metrics on ${address.host} are reachable from that network, without authentication`);
  }
}

/** A `--bootstrap` value: an `/onion3/…/p2p/…` multiaddr whose peer id is the onion's, else ERR_INVALID_MULTIADDR. */
function checkBootstrap(addr: string): void {
  const target = addr.startsWith('/') ? parseTarget(addr) : undefined; // throws for one that does not parse
  if (target?.kind !== 'onion' || !/\/p2p\//.test(addr)) {
    throw new MmogitError(
      'ERR_INVALID_MULTIADDR',
      `--bootstrap "${addr}" is not an /onion3/…/p2p/… multiaddr`,
      {
        details: { flag: 'bootstrap', value: addr },
      },
    );
  }
}

/**
 * Everything `tor start` can check before it spawns: the flags, the identity and the network dir. The daemon
 * would find the same faults only after it started (a missing config dir was even ERR_INTERNAL, from opening
 * `daemon.log`; a missing identity ERR_TOR_START_FAILED, exit 4, instead of its own code, exit 3).
 */
async function checkStart(args: TorStartArgs, configDir: string): Promise<void> {
  if (args.metrics !== undefined) await checkMetricsFlag(args.metrics);
  if (args.torPassword !== undefined && args.torControl === undefined) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      '--tor-password is the password of --tor-control: give both',
      {
        details: { flag: 'tor-password' },
      },
    );
  }
  if (args.useBridges && args.torControl !== undefined) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      '--use-bridges configures the tor mmogit starts; with --tor-control, configure bridges in your tor',
      { details: { flag: 'use-bridges' } },
    );
  }
  for (const b of args.bootstrap ?? []) checkBootstrap(b);
  await loadIdentity(configDir);
  const network = args.network ?? process.env.MMOGIT_TOR_NETWORK;
  if (network) await loadNetwork(network);
}

/** `mmogit tor start`: starts the agent daemon and returns once its onion is published. */
export default async function torStart(args: TorStartArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  // Refused before anything starts: a bad value never leaves a daemon behind an error exit.
  const timeoutMs = parseTimeoutMs(args.timeout, 180);
  await checkStart(args, configDir);
  // the mesh policies reach peers' onions through mesh exits' tors: they never reveal this machine's IP to a peer
  if (args.policy === 'tor-then-direct' || args.policy === 'direct-only') {
    note(
      `warning: transport policy ${args.policy} may connect to peers without tor (your IP becomes visible to them)`,
    );
  }
  if (args.foreground) {
    const served = await serveAgent({
      configDir,
      ...startOptions(args),
      timeoutMs,
      onProgress: (p) => showProgress(p),
    });
    const state = await served.ready;
    endProgress();
    const out = result(state);
    note(`agent ${state.onion} running in the foreground (Ctrl-C to stop)`);
    const shutdown = () => void served.stop();
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
    // Print now; the process stays up until stopped.
    process.stdout.write(
      args.json ? `${JSON.stringify(out.data)}\n` : `${terminalSafe(String(out.human))}\n`,
    );
    await served.stopped;
    return { data: out.data, printed: true };
  }
  // Ctrl-C (or SIGTERM) while waiting: the daemon runs in its own process group and never sees the signal, so
  // the wait is aborted and spawnDaemon stops the daemon it spawned (tor included) before the error.
  const interrupted = new AbortController();
  const onSignal = (signal: NodeJS.Signals) =>
    interrupted.abort(
      new AbortedError(`tor start interrupted (${signal}): the daemon it spawned was stopped`, {
        details: { signal },
      }),
    );
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const state = await spawnDaemon({
      configDir,
      args: daemonArgs(args),
      ...(args.torPassword ? { stdin: args.torPassword } : {}),
      timeoutMs,
      signal: interrupted.signal,
      onProgress: (p) => showProgress(p),
    });
    endProgress();
    return result(state);
  } catch (e) {
    endProgress();
    if (e instanceof MmogitError && e.code === 'ERR_DAEMON_RUNNING') {
      throw new MmogitError('ERR_DAEMON_RUNNING', `already running (see \`mmogit tor status\`)`, {
        details: { configDir },
      });
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
