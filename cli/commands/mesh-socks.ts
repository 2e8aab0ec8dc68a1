import { parseRelaySpec } from '../../src/mesh/descriptor.js';
import { DEFAULT_SOCKS_PORT } from '../../src/mesh/socks.js';
import { BOUNDS, parseCount, parseTimeoutMs } from '../_numbers.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { meshAgent, meshRunning, refuseIfRunning, serveMeshProcess } from './_mesh.js';

export interface MeshSocksArgs extends GlobalOptions {
  port?: string;
  hops?: string;
  relay?: string[];
  network?: string;
  interval?: string;
  timeout?: string;
}

/**
 * `mmogit mesh socks`: SOCKS5 on 127.0.0.1 whose connections go through mesh circuits, until `mmogit mesh stop`.
 * Relays from `--relay ONION[@HOST:PORT]`; without any, or when one has no address, tor is started (relays by
 * onion, and found in the DHT). Mesh events go to stderr as `mesh-event {json}` lines.
 */
export default async function meshSocks(args: MeshSocksArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  // Read by the one numeric parser, before tor starts (yargs' numbers took 0x10, 1e3 and NaN).
  const timeoutMs = parseTimeoutMs(args.timeout, 180);
  const port = args.port === undefined ? DEFAULT_SOCKS_PORT : parseCount(args.port, 'port', BOUNDS.port);
  const hops = args.hops === undefined ? undefined : parseCount(args.hops, 'hops', BOUNDS.hops);
  const intervalMs =
    args.interval === undefined ? undefined : parseCount(args.interval, 'interval', BOUNDS.intervalMs);
  const relays = (args.relay ?? []).map(parseRelaySpec);
  const tor = relays.length === 0 || relays.some((r) => !r.tcp) || args.network !== undefined;
  refuseIfRunning(await meshRunning(configDir), configDir);
  const host = await meshAgent(configDir, {
    tor,
    network: args.network,
    timeoutMs,
  });
  let mesh: Awaited<ReturnType<typeof host.agent.mesh.client>>;
  let server: Awaited<ReturnType<typeof mesh.socks>>;
  try {
    mesh = await host.agent.mesh.client({
      relays,
      ...(hops !== undefined ? { hops } : {}),
      ...(intervalMs !== undefined ? { intervalMs } : {}),
    });
    server = await mesh.socks({ port });
  } catch (e) {
    await host.stop();
    throw e;
  }
  for (const name of [
    'circuit:built',
    'circuit:failed',
    'circuit:switched',
    'stream:recovered',
    'exit:lost',
    'tampering',
  ] as const) {
    mesh.on(name, (e: object) => {
      const body = {
        event: name,
        ...e,
        ...('error' in e ? { error: (e.error as { toJSON?: () => unknown }).toJSON?.() } : {}),
      };
      process.stderr.write(`mesh-event ${JSON.stringify(body)}\n`);
    });
  }
  const data = {
    mode: 'socks',
    socks: `${server.host}:${server.port}`,
    port: server.port,
    hops: mesh.hops,
    relays: mesh.relays.length,
    tor,
    pid: process.pid,
  };
  process.stdout.write(args.json ? `${JSON.stringify(data)}\n` : `socks5h://${server.host}:${server.port}\n`);
  note(`mesh SOCKS5 on ${server.host}:${server.port} (${mesh.hops} hops; \`mmogit mesh stop\` to stop)`);
  await serveMeshProcess(
    configDir,
    data,
    () => ({ circuits: mesh.circuits() }),
    async () => {
      await mesh.close();
      await host.stop();
    },
  );
  return { data, printed: true };
}
