/**
 * The PQ channel's throughput through real onion services: {@link benchPqThroughputTor} runs
 * {@link benchPqThroughput} over a stream from one agent tor to another's onion (issue 4: a 10 MB transfer
 * through the channel must reach ≥ 0.90× a bare socket through tor).
 * The network is `MMOGIT_TEST_NETWORK` or `MMOGIT_TOR_NETWORK` (a testnet dir) when set, else one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/pqc-tor.js`.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { startTor, type TorHandle } from '../src/tor/daemon.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { dialOnion } from '../src/tor/socks.js';
import type { TorNetworkInfo } from '../src/tor/testnet.js';
import { withNetwork } from './_shared.js';
import { type BenchResult, benchPqThroughput, type StreamPair } from './pqc.js';

/**
 * 10 MB through the PQ channel vs the bare stream, both over alice-tor → bob's onion on the private network;
 * median of `runs`. `ratio` is the metric (target ≥ 0.90).
 */
export async function benchPqThroughputTor(
  options: { network?: TorNetworkInfo; bytes?: number; runs?: number } = {},
): Promise<BenchResult> {
  return withNetwork(options.network, async (network) => {
    const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-pqc-tors-'));
    const tors: TorHandle[] = [];
    const accepted: net.Socket[] = [];
    const waiters: ((s: net.Socket) => void)[] = [];
    const server = net.createServer((s) => {
      s.on('error', () => {});
      const w = waiters.shift();
      if (w) w(s);
      else accepted.push(s);
    });
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const start = (name: string) => startTor({ dataDir: join(tmp, name), network, timeoutMs: 120_000 });
      const [a, b] = await Promise.all([start('a'), start('b')]);
      tors.push(a, b);
      const bob = AgentKey.random();
      await publishOnion(b, bob, { targetPort: (server.address() as net.AddressInfo).port });
      const pair = async (): Promise<StreamPair> => {
        const served = new Promise<net.Socket>((resolve) => {
          const s = accepted.shift();
          if (s) resolve(s);
          else waiters.push(resolve);
        });
        const client = await dialOnion(
          { socksPort: a.socksPort, onion: bob.onion, port: 4001, retry: { attempts: 10 } },
          { timeoutMs: 60_000 },
        );
        const far = await served;
        return {
          a: client,
          b: far,
          close: async () => {
            client.destroy();
            far.destroy();
          },
        };
      };
      return await benchPqThroughput({
        pair,
        label: 'tor',
        command: 'npx tsc -p tsconfig.json && node dist/bench/pqc-tor.js',
        ...(options.bytes !== undefined ? { bytes: options.bytes } : {}),
        runs: options.runs ?? 3,
      });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.all(tors.map((t) => t.stop()));
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(await benchPqThroughputTor(), null, 2)}\n`);
}
