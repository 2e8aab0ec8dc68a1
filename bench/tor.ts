/**
 * Benchmarks of the tor layer on the private Tor network:
 * - {@link benchTorStart}: agent start (spawn tor, control, bootstrap, ADD_ONION, descriptor upload) until a
 *   peer's first round trip through the onion, against tor's own share of it (bootstrap steps as tor reports
 *   them + ADD_ONION → `HS_DESC UPLOADED`). The overhead is ours; target ≤ 1 s.
 * - {@link benchWarmSocksConnect}: a SOCKS CONNECT to an onion that already has a circuit, against a bare
 *   loopback TCP connect.
 * - {@link benchBareEchoNodelay}: bare echoes through two agent tors with and without the TCP_NODELAY shim
 *   (src/tor/nodelay.ts) on the same network: median and p90 per payload size (context; docs/tor.md).
 * The network is `MMOGIT_TEST_NETWORK` or `MMOGIT_TOR_NETWORK` (a testnet dir) when set, else one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/tor.js`.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { startTor, type TorHandle } from '../src/tor/daemon.js';
import { nodelayShim } from '../src/tor/nodelay.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { dialOnion, socksConnect } from '../src/tor/socks.js';
import type { TorNetworkInfo } from '../src/tor/testnet.js';
import { type BenchResult, echoTimes, median, round, withNetwork } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/tor.js';
/** The goal for our overhead over tor's own start + publish time. */
export const START_OVERHEAD_TARGET_MS = 1_000;

async function echoServer(): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

async function roundTrip(socket: net.Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
    socket.write('x');
  });
}

/**
 * `runs` fresh agents: each from `startTor` to a peer's first echoed byte through its onion.
 * Returns the total (anchor: tor's own time) and our overhead (target {@link START_OVERHEAD_TARGET_MS}).
 */
export async function benchTorStart(
  options: { network?: TorNetworkInfo; runs?: number } = {},
): Promise<BenchResult[]> {
  const runs = options.runs ?? 3;
  return withNetwork(options.network, async (network) => {
    const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-tor-start-'));
    const server = await echoServer();
    const port = (server.address() as net.AddressInfo).port;
    const peer = await startTor({ dataDir: join(tmp, 'peer'), network });
    const totals: number[] = [];
    const tors: number[] = [];
    const parts: string[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        let agent: TorHandle | undefined;
        try {
          const t0 = performance.now();
          let firstStep: number | undefined;
          let doneStep = 0;
          agent = await startTor({
            dataDir: join(tmp, `agent${i}`),
            network,
            onProgress: (p) => {
              firstStep ??= performance.now();
              if (p.progress === 100) doneStep = performance.now();
            },
          });
          const started = performance.now();
          const svc = await publishOnion(agent, AgentKey.random(), { targetPort: port });
          const published = performance.now();
          const s = await dialOnion(
            { socksPort: peer.socksPort, onion: svc.onion, port: svc.virtualPort, retry: { attempts: 10 } },
            { timeoutMs: 60_000 },
          );
          await roundTrip(s);
          s.destroy();
          const reached = performance.now();
          // tor's own time: its bootstrap steps (first reported → 100 %) and ADD_ONION → HS_DESC UPLOADED.
          const torOwn = doneStep - (firstStep ?? doneStep) + (svc.uploadMs ?? 0);
          totals.push(reached - t0);
          tors.push(torOwn);
          parts.push(
            `start ${round(started - t0, 0)} ms, publish ${round(published - started, 0)} ms (tor upload ${svc.uploadMs} ms), first round trip ${round(reached - published, 0)} ms`,
          );
        } finally {
          await agent?.stop();
        }
      }
    } finally {
      await peer.stop();
      server.close();
      await rm(tmp, { recursive: true, force: true });
    }
    const total = median(totals);
    const own = median(tors);
    const overheads = totals.map((t, i) => t - (tors[i] as number));
    return [
      {
        name: 'tor: agent start → onion reachable (private network)',
        value: round(total, 0),
        unit: 'ms',
        anchor: round(own, 0),
        ratio: round(total / own, 2),
        command: COMMAND,
        notes: `median of ${runs}; anchor = tor's own time (bootstrap steps + ADD_ONION → HS_DESC UPLOADED). Runs: ${parts.join('; ')}`,
      },
      {
        name: 'tor: our overhead over tor’s own start + publish time',
        value: round(median(overheads), 0),
        unit: 'ms',
        target: START_OVERHEAD_TARGET_MS,
        command: COMMAND,
        notes: `median of ${runs}: process spawn, control connection + auth, and the peer's SOCKS retries after the upload (tor answers reply 4 for ~1 s)`,
      },
    ];
  });
}

/** Median warm SOCKS CONNECT to an onion (circuit already built) vs a bare loopback TCP connect. */
export async function benchWarmSocksConnect(
  options: { network?: TorNetworkInfo; connects?: number } = {},
): Promise<BenchResult> {
  const connects = options.connects ?? 20;
  return withNetwork(options.network, async (network) => {
    const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-socks-'));
    const server = await echoServer();
    const port = (server.address() as net.AddressInfo).port;
    const [a, b] = await Promise.all([
      startTor({ dataDir: join(tmp, 'a'), network }),
      startTor({ dataDir: join(tmp, 'b'), network }),
    ]);
    try {
      const svc = await publishOnion(b, AgentKey.random(), { targetPort: port });
      const first = await dialOnion(
        { socksPort: a.socksPort, onion: svc.onion, port: svc.virtualPort, retry: { attempts: 10 } },
        { timeoutMs: 60_000 },
      );
      await roundTrip(first); // the circuit is warm from here on
      const viaTor: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i < connects; i++) {
        let t = performance.now();
        const s = await socksConnect(
          { socksPort: a.socksPort, host: svc.onion, port: svc.virtualPort, isolationKey: svc.serviceId },
          { timeoutMs: 30_000 },
        );
        viaTor.push(performance.now() - t);
        s.destroy();
        t = performance.now();
        const d = net.connect(port, '127.0.0.1');
        await new Promise<void>((r, j) => d.once('connect', r).once('error', j));
        bare.push(performance.now() - t);
        d.destroy();
      }
      first.destroy();
      const value = median(viaTor);
      const anchor = median(bare);
      return {
        name: 'tor: warm SOCKS connect to an onion',
        value: round(value, 1),
        unit: 'ms',
        anchor: round(anchor, 2),
        ratio: round(value / anchor, 0),
        command: COMMAND,
        notes: `median of ${connects}, same stream isolation as the first (warm) connect; anchor = bare loopback TCP connect`,
      };
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      server.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

const ECHO_SIZES = [51, 462, 2000];

/**
 * Bare echoes of 51, 462 and 2,000 bytes through two agent tors, once with both preloading the TCP_NODELAY shim
 * and once with neither, on the same network (whose own tors have it when it was started with it): median
 * (value) and p90 (notes); the anchor of the shim row is the same size's median without it.
 */
export async function benchBareEchoNodelay(
  options: { network?: TorNetworkInfo; rounds?: number } = {},
): Promise<BenchResult[]> {
  const rounds = options.rounds ?? 100;
  return withNetwork(options.network, async (network) => {
    const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-nodelay-'));
    const server = await echoServer();
    const port = (server.address() as net.AddressInfo).port;
    const measured: Record<'with' | 'without', number[][]> = { with: [], without: [] };
    try {
      for (const mode of ['without', 'with'] as const) {
        const nodelay = mode === 'with';
        const [a, b] = await Promise.all(
          ['a', 'b'].map((n) =>
            startTor({ dataDir: join(tmp, `${mode}-${n}`), network, nodelay, restart: false }),
          ),
        );
        try {
          const svc = await publishOnion(b as TorHandle, AgentKey.random(), { targetPort: port });
          const s = await dialOnion(
            {
              socksPort: (a as TorHandle).socksPort,
              onion: svc.onion,
              port: svc.virtualPort,
              retry: { attempts: 10 },
            },
            { timeoutMs: 60_000 },
          );
          s.setNoDelay(true);
          try {
            await echoTimes(s, 100, 20); // warm
            for (const bytes of ECHO_SIZES) measured[mode].push(await echoTimes(s, bytes, rounds));
          } finally {
            s.destroy();
          }
        } finally {
          await Promise.all([a?.stop(), b?.stop()]);
        }
      }
    } finally {
      server.close();
      await rm(tmp, { recursive: true, force: true });
    }
    const p90 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.ceil(0.9 * xs.length) - 1] as number;
    const shimmed = (await nodelayShim()).path !== undefined;
    return ECHO_SIZES.flatMap((bytes, i) => {
      const without = measured.without[i] as number[];
      const withShim = measured.with[i] as number[];
      return [
        {
          name: `tor: bare echo of ${bytes} B through two agent tors, without the TCP_NODELAY shim`,
          value: round(median(without), 2),
          unit: 'ms',
          command: COMMAND,
          notes: `median of ${rounds}; p90 ${round(p90(without), 2)} ms`,
        },
        {
          name: `tor: bare echo of ${bytes} B through two agent tors, with the TCP_NODELAY shim`,
          value: round(median(withShim), 2),
          unit: 'ms',
          anchor: round(median(without), 2),
          ratio: round(median(withShim) / median(without), 3),
          command: COMMAND,
          notes:
            `median of ${rounds}; p90 ${round(p90(withShim), 2)} ms; anchor = the same echo without the shim` +
            (shimmed ? '' : ' (the shim could not be built here: both rows are without it)'),
        },
      ];
    });
  });
}

/** Agent tor start-up, onion connects and the TCP_NODELAY shim's effect on the private network. */
export const bench: BenchModule = {
  name: 'tor',
  needsTor: true,
  run: {
    benchTorStart: () => benchTorStart(),
    benchWarmSocksConnect: () => benchWarmSocksConnect(),
    benchBareEchoNodelay: () => benchBareEchoNodelay(),
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await withNetwork(undefined, async (network) => [
    ...(await benchTorStart({ network })),
    await benchWarmSocksConnect({ network }),
    ...(await benchBareEchoNodelay({ network })),
  ]);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}
