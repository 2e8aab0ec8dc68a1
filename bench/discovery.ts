/**
 * Discovery benchmarks on loopback: 50 real libp2p nodes (TCP on 127.0.0.1, noise, yamux, our kad-dht) in one
 * process, no tor. {@link benchDiscoveryLoopback50} reports
 * - discover latency: a fresh `discover('memory_sync', { limit: 1 })` from a node that is not a provider, until
 *   the first verified advertisement (what a caller waiting for one peer sees), median over runs; and
 *   `{ limit: 5 }` until all 5 providers were yielded;
 * - publish latency: `advertise(['memory_sync'])` (record PUT + provider record), median;
 * - memory per node: RSS and heap growth for the 50 nodes ÷ 50.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/discovery.js`.
 * @module
 */
import '../src/_polyfill.js';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { sleep } from '../src/_async.js';
import { Discovery } from '../src/discovery/index.js';
import { startLoopbackNetwork } from '../test/support/loopback.js';
import { type BenchResult, median, round } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/discovery.js';
/** The goal for the loopback discover latency (median). */
export const DISCOVER_LOOPBACK_TARGET_MS = 300;
const NODES = 50;
const PROVIDERS = 5;
const RUNS = 15;
const SETTLE_MS = 5_000;

const MiB = 1024 * 1024;

/** 50 loopback nodes: discover latency (first and all results), publish latency, memory per node. */
export async function benchDiscoveryLoopback50(): Promise<BenchResult[]> {
  globalThis.gc?.();
  const before = process.memoryUsage();
  const joinStart = performance.now();
  const { agents, stop } = await startLoopbackNetwork(NODES);
  const joinSeconds = (performance.now() - joinStart) / 1000;
  const ds = agents.map((a) => new Discovery(a.node, a.key));
  try {
    globalThis.gc?.();
    const after = process.memoryUsage();
    const providers = Array.from({ length: PROVIDERS }, (_, i) => 5 + i * 9);
    const publish: number[] = [];
    for (const i of providers) {
      const t = performance.now();
      await ds[i]!.advertise(['memory_sync'], { timeoutMs: 60_000 });
      publish.push(performance.now() - t);
    }
    // a second round: re-publication on a warm network (what the periodic re-publish costs)
    for (const i of providers) {
      const t = performance.now();
      await ds[i]!.advertise(['memory_sync'], { timeoutMs: 60_000 });
      publish.push(performance.now() - t);
    }
    // let the joins' background work (routing-table pings, self-queries) settle before measuring
    await sleep(SETTLE_MS);
    const discoverers = agents.map((_, i) => i).filter((i) => !providers.includes(i) && i >= 2);
    const first: number[] = [];
    const all: number[] = [];
    let incomplete = 0;
    for (let r = 0; r < RUNS; r++) {
      const i = discoverers[(r * 7) % discoverers.length] as number;
      // what a caller that needs one peer runs: discover(…, { limit: 1 })
      let t = performance.now();
      for await (const _ of ds[i]!.discover('memory_sync', { timeoutMs: 30_000, limit: 1 })) {
        first.push(performance.now() - t);
      }
      // and one that wants every provider
      const j = discoverers[(r * 7 + 3) % discoverers.length] as number;
      t = performance.now();
      let n = 0;
      for await (const _ of ds[j]!.discover('memory_sync', { timeoutMs: 30_000, limit: PROVIDERS })) n++;
      if (n === PROVIDERS) all.push(performance.now() - t);
      else incomplete++;
    }
    const notes = `${NODES} nodes in one process joined in ${round(joinSeconds)} s; ${PROVIDERS} providers; ${RUNS} runs from different nodes; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores${incomplete ? `; ${incomplete} runs found fewer than ${PROVIDERS}` : ''}`;
    return [
      {
        name: `discover latency, first verified advert, ${NODES} nodes loopback, median`,
        value: round(median(first)),
        unit: 'ms',
        target: DISCOVER_LOOPBACK_TARGET_MS,
        command: COMMAND,
        notes: `${notes}; min ${round(Math.min(...first))}, max ${round(Math.max(...first))} ms`,
      },
      {
        name: `discover latency, all ${PROVIDERS} providers, ${NODES} nodes loopback, median`,
        value: round(all.length ? median(all) : Number.NaN),
        unit: 'ms',
        target: DISCOVER_LOOPBACK_TARGET_MS,
        command: COMMAND,
        notes,
      },
      {
        name: `publish latency (record + provider), ${NODES} nodes loopback, median`,
        value: round(median(publish)),
        unit: 'ms',
        command: COMMAND,
        notes: `${publish.length} advertise() calls; max ${round(Math.max(...publish))} ms`,
      },
      {
        name: `memory per node, ${NODES} libp2p+kad-dht nodes loopback (RSS)`,
        value: round((after.rss - before.rss) / NODES / MiB, 2),
        unit: 'MiB',
        command: COMMAND,
        notes: `heap ${round((after.heapUsed - before.heapUsed) / NODES / MiB, 2)} MiB per node; measured after joining`,
      },
    ];
  } finally {
    for (const d of ds) d.stop();
    await stop();
  }
}

/** Discovery on a 50-node loopback DHT. */
export const bench: BenchModule = {
  name: 'discovery',
  needsTor: false,
  // 50 nodes share one event loop: 32 s on a quiet box, 255–330 s with a load average of 15–25 on 2 cores
  timeoutMs: 600_000,
  run: { benchDiscoveryLoopback50: () => benchDiscoveryLoopback50() },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchDiscoveryLoopback50()
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    });
}
