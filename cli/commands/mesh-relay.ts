import { MmogitError } from '../../src/errors.js';
import { parseOnionAddress } from '../../src/identity/onion.js';
import { exitPolicyFrom } from '../../src/mesh/exit-policy.js';
import { BOUNDS, parseCount, parseTimeoutMs } from '../_numbers.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { meshAgent, meshRunning, parseListen, refuseIfRunning, serveMeshProcess } from './_mesh.js';

export interface MeshRelayArgs extends GlobalOptions {
  listen?: string;
  exitTo?: string[];
  family?: string[];
  network?: string;
  tor?: boolean;
  interval?: string;
  timeout?: string;
}

/**
 * `mmogit mesh relay`: this agent relays mesh circuits until `mmogit mesh stop` (or SIGINT/SIGTERM). With tor
 * (default) the agent starts too, reachable on its onion, and advertises `mesh_relay`; `--listen` adds plain TCP.
 */
export default async function meshRelay(args: MeshRelayArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  // Read by the one numeric parser, before anything starts (yargs' numbers took 0x10, 1e3 and NaN).
  const timeoutMs = parseTimeoutMs(args.timeout, 180);
  const intervalMs =
    args.interval === undefined ? undefined : parseCount(args.interval, 'interval', BOUNDS.intervalMs);
  const listen = args.listen !== undefined ? parseListen(args.listen) : undefined;
  const exitPolicy = exitPolicyFrom(args.exitTo ?? []); // bad --exit-to fails here, before anything starts
  const family = (args.family ?? []).map((f) => parseOnionAddress(f).hostname);
  const tor = args.tor !== false;
  if (!tor && !listen) throw new MmogitError('ERR_INVALID_ARGUMENT', '--no-tor needs --listen HOST:PORT');
  refuseIfRunning(await meshRunning(configDir), configDir);
  const host = await meshAgent(configDir, {
    tor,
    network: args.network,
    timeoutMs,
  });
  let handle: Awaited<ReturnType<typeof host.agent.mesh.relay>>;
  try {
    handle = await host.agent.mesh.relay({
      ...(listen ? { listen } : {}),
      exitPolicy,
      family,
      ...(intervalMs !== undefined ? { intervalMs } : {}),
    });
  } catch (e) {
    await host.stop();
    throw e;
  }
  const data = {
    mode: 'relay',
    onion: handle.onion,
    pubkey: handle.pubkey,
    listen: handle.listen,
    onionReachable: handle.onionReachable,
    relay: handle.spec,
    exits: handle.exits,
    pid: process.pid,
  };
  process.stdout.write(args.json ? `${JSON.stringify(data)}\n` : `${handle.spec}\n`);
  note(`mesh relay ${handle.onion} running (\`mmogit mesh stop\` to stop)`);
  await serveMeshProcess(
    configDir,
    data,
    () => ({ circuits: handle.relay.circuitCount, links: handle.relay.linkCount }),
    async () => {
      await handle.stop();
      await host.stop();
    },
  );
  return { data, printed: true };
}
