/**
 * The PQ channel's throughput through real onion services: {@link benchPqThroughputTor} runs
 * {@link benchPqThroughput} over a stream from one agent tor to another's onion (a 10 MB transfer through the
 * channel must reach ≥ 0.90× a bare socket through tor). Accepted streams are matched to dials by a tag
 * (bench/_tagged.ts), and every wait is bounded by the runner's signal.
 * The network is `MMOGIT_TEST_NETWORK` or `MMOGIT_TOR_NETWORK` (a testnet dir) when set, else one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/pqc-tor.js`.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { startTor, type TorHandle } from '../src/tor/daemon.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { dialOnion } from '../src/tor/socks.js';
import type { TorNetworkInfo } from '../src/tor/testnet.js';
import { withNetwork } from './_shared.js';
import { taggedListener } from './_tagged.js';
import type { BenchModule } from './_types.js';
import { type BenchResult, benchPqThroughput, type StreamPair } from './pqc.js';

/**
 * 10 MB through the PQ channel vs the bare stream, both over alice-tor → bob's onion on the private network;
 * median of `runs`. `ratio` is the goal's metric (≥ 0.90).
 */
export async function benchPqThroughputTor(
  options: { network?: TorNetworkInfo; bytes?: number; runs?: number; signal?: AbortSignal } = {},
): Promise<BenchResult> {
  const signal = options.signal ?? new AbortController().signal;
  return withNetwork(options.network, async (network) => {
    const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-pqc-tors-'));
    const tors: TorHandle[] = [];
    const listener = await taggedListener();
    try {
      const start = (name: string) =>
        startTor({ dataDir: join(tmp, name), network, timeoutMs: 120_000, signal });
      const [a, b] = await Promise.all([start('a'), start('b')]);
      tors.push(a, b);
      const bob = AgentKey.random();
      await publishOnion(b, bob, { targetPort: listener.port, signal });
      const pair = async (): Promise<StreamPair> => {
        const client = await dialOnion(
          { socksPort: a.socksPort, onion: bob.onion, port: 4001, retry: { attempts: 10 } },
          { timeoutMs: 60_000, signal },
        );
        const tag = listener.tag();
        client.write(tag);
        const far = await listener
          .accepted(tag, AbortSignal.any([signal, AbortSignal.timeout(60_000)]))
          .catch((e: unknown) => {
            client.destroy();
            throw e;
          });
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
      await listener.close();
      await Promise.all(tors.map((t) => t.stop()));
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

/** The PQ channel's throughput through onion services. */
export const bench: BenchModule = {
  name: 'pqc-tor',
  needsTor: true,
  run: { benchPqThroughputTor: ({ signal }) => benchPqThroughputTor({ signal }) },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(await benchPqThroughputTor(), null, 2)}\n`);
}
