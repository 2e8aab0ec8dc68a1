/**
 * Discovery at scale on the simulated tor-like transport (test/support/sim-transport.ts): N real libp2p +
 * kad-dht + Discovery nodes in one process. Prints the seed, join time, advertise and discover latency and
 * hop counts (median, p90) and RSS per node, as one JSON document on stdout.
 * Run: `npx tsc -p tsconfig.json && node --expose-gc dist/bench/scale-sim.js [N] [private|public] [seed] [timeoutMin]`
 * (the whole run's bound, default 25 minutes; 1,000 nodes on 2 cores needs about 40).
 * @module
 */
import '../src/_polyfill.js';
import { serviceProviderKey } from '../src/discovery/dht.js';
import { Discovery } from '../src/discovery/index.js';
import { startSimNetwork } from '../test/support/sim-network.js';
import { freshSeed, SIM_PROFILES } from '../test/support/sim-profile.js';
import { SimNetwork } from '../test/support/sim-transport.js';
import { DhtDiagnosis, QueryLog } from './_dht-diagnose.js';
import { type QueryTrace, tracedNode } from './_dht-trace.js';
import { type BenchResult, median, round } from './_shared.js';
import { simMain } from './_sim-cli.js';
import type { BenchModule } from './_types.js';

const MiB = 1024 * 1024;
const PROVIDERS = 5;
/** Searches (`MMOGIT_SIM_DISCOVERERS` raises it: a rare miss needs more than 15 to be seen). */
const DISCOVERERS = Number(process.env.MMOGIT_SIM_DISCOVERERS ?? 15);

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))] ?? Number.NaN;
}

/** One run: N nodes on `profile`, bounded by `timeoutMs` as a whole. */
export async function runScaleSim(n: number, profileName: string, seed: number, timeoutMs = 1_500_000) {
  const profile = SIM_PROFILES[profileName];
  if (profile === undefined) throw new RangeError(`unknown profile ${profileName}`);
  const signal = AbortSignal.timeout(timeoutMs);
  process.stderr.write(`[scale-sim] ${n} nodes, profile ${profile.name}, seed ${seed}\n`);
  const net = new SimNetwork(profile, seed);
  globalThis.gc?.();
  const before = process.memoryUsage();
  const joins: number[] = [];
  const t0 = performance.now();
  const { agents, stop } = await startSimNetwork(net, n, { signal, onJoined: (_i, ms) => joins.push(ms) });
  const joinWallS = (performance.now() - t0) / 1000;
  globalThis.gc?.();
  const after = process.memoryUsage();
  const traces: QueryTrace[] = [];
  // the diagnosis (bench/_dht-diagnose.ts) follows the one query of interest: the node's provide or search
  const diag = new DhtDiagnosis(
    agents.map((a) => a.node),
    serviceProviderKey('memory_sync'),
  );
  let watch: { node: number; op: string; log: QueryLog; finals: string[] } | undefined;
  const diagnosis: { advertise: unknown[]; discover: unknown[]; tables?: unknown } = {
    advertise: [],
    discover: [],
  };
  const note = (kind: string, x: unknown): void => {
    process.stderr.write(`[scale-sim] ${kind} ${JSON.stringify(x)}\n`);
  };
  /** the watched node's Discovery log lines (why a provider fell through, how a search ended) */
  let lines: string[] = [];
  /**
   * Where the whole-run bound cut the run, if it did: the summary then covers what finished before it (a search
   * cut midway is not counted), instead of the run throwing away everything it measured.
   */
  let cut: { phase: 'advertise' | 'discover'; after: number } | undefined;
  const ds = agents.map(
    (a, idx) =>
      new Discovery(
        tracedNode(
          a.node,
          (t) => traces.push(t),
          (op, e) => {
            if (watch?.node !== idx || watch.op !== op) return;
            watch.log.see(e);
            if (e.name === 'FINAL_PEER') watch.finals.push(e.peer.id.toString());
          },
        ),
        a.key,
        {
          logger: (line) => {
            if (watch?.node === idx && lines.length < 20) lines.push(line.slice(0, 160));
          },
        },
      ),
  );
  try {
    diagnosis.tables = diag.tables();
    note('tables', diagnosis.tables);
    const providers = Array.from({ length: PROVIDERS }, (_, i) =>
      Math.floor(((i + 1) * n) / (PROVIDERS + 1)),
    );
    const adv: number[] = [];
    const advHops: number[] = [];
    for (const i of providers) {
      if (signal.aborted) {
        cut = { phase: 'advertise', after: adv.length };
        break;
      }
      traces.length = 0;
      watch = { node: i, op: 'provide', log: new QueryLog(), finals: [] };
      const t = performance.now();
      try {
        await ds[i]!.advertise(['memory_sync'], { timeoutMs: 120_000, signal });
      } catch (e) {
        if (!signal.aborted) throw e;
        cut = { phase: 'advertise', after: adv.length };
        break;
      }
      adv.push(performance.now() - t);
      watch.log.end();
      const a = await diag.advertised(i, watch.log, watch.finals);
      diagnosis.advertise.push(a);
      note('advertise', a);
      advHops.push(Math.max(0, ...traces.map((x) => x.finalPeerHops ?? x.maxHops)));
    }
    const disc: number[] = [];
    const discHops: number[] = [];
    let found = 0;
    const from = Array.from(
      { length: DISCOVERERS },
      (_, i) => 2 + Math.floor((i * (n - 3)) / DISCOVERERS),
    ).filter((i) => !providers.includes(i));
    let searched = 0;
    for (const i of cut ? [] : from) {
      if (signal.aborted) {
        cut = { phase: 'discover', after: searched };
        break;
      }
      traces.length = 0;
      lines = [];
      const start = diag.startingPeers(i);
      watch = { node: i, op: 'findProviders', log: new QueryLog(), finals: [] };
      const t = performance.now();
      let hit: number | undefined;
      try {
        for await (const _v of ds[i]!.discover('memory_sync', { timeoutMs: 120_000, limit: 1, signal })) {
          hit = performance.now() - t;
        }
      } catch (e) {
        if (!signal.aborted) throw e;
      }
      // A search the bound ended is neither a hit nor a miss.
      if (signal.aborted && hit === undefined) {
        cut = { phase: 'discover', after: searched };
        break;
      }
      searched++;
      if (hit !== undefined) {
        disc.push(hit);
        found++;
      }
      watch.log.end();
      const d = { ...((await diag.searched(i, hit !== undefined, watch.log, start)) as object), lines };
      lines = [];
      diagnosis.discover.push(d);
      note('discover', d);
      if (hit === undefined && !signal.aborted) {
        // the same search again from the same node (not counted in the figures): does a miss repeat?
        const again = diag.startingPeers(i);
        watch = { node: i, op: 'findProviders', log: new QueryLog(), finals: [] };
        let hit2 = false;
        try {
          for await (const _v of ds[i]!.discover('memory_sync', { timeoutMs: 120_000, limit: 1, signal }))
            hit2 = true;
        } catch (e) {
          if (!signal.aborted) throw e;
        }
        watch.log.end();
        const r = { ...((await diag.searched(i, hit2, watch.log, again)) as object), lines };
        lines = [];
        diagnosis.discover.push({ retry: true, ...(r as object) });
        note('discover-retry', r);
      }
      const fp = traces.find((x) => x.op === 'findProviders');
      if (fp?.firstResultHops !== undefined) discHops.push(fp.firstResultHops);
    }
    return {
      nodes: n,
      profile: profile.name,
      seed,
      joinWallS: round(joinWallS, 1),
      joinMs: { median: round(median(joins), 0), p90: round(p90(joins), 0) },
      advertiseMs: { median: round(median(adv), 0), p90: round(p90(adv), 0) },
      advertiseHops: { median: median(advHops), p90: p90(advHops) },
      discoverMs: { median: round(median(disc), 0), p90: round(p90(disc), 0) },
      discoverHops: { median: median(discHops), p90: p90(discHops) },
      discoverFound: `${found}/${searched}`,
      searchesPlanned: from.length,
      ...(cut ? { cutByBound: { ...cut, boundMs: timeoutMs } } : {}),
      rssPerNodeMiB: round((after.rss - before.rss) / n / MiB, 2),
      heapPerNodeMiB: round((after.heapUsed - before.heapUsed) / n / MiB, 2),
      sim: net.stats,
      diagnosis,
    };
  } finally {
    watch = undefined;
    diag.stop();
    for (const d of ds) d.stop();
    await stop();
  }
}

/** 100 nodes, private profile. */
export async function benchScaleSim100(): Promise<BenchResult[]> {
  const r = await runScaleSim(100, 'private', freshSeed());
  if (r.cutByBound) {
    throw new Error(`the run's bound cut it (${JSON.stringify(r.cutByBound)}); found ${r.discoverFound}`);
  }
  const command = 'npx tsc -p tsconfig.json && node --expose-gc dist/bench/scale-sim.js 100 private';
  const notes = `seed ${r.seed}; ${JSON.stringify({ join: r.joinMs, advHops: r.advertiseHops, discHops: r.discoverHops, found: r.discoverFound })}`;
  return [
    {
      name: 'sim discover latency, 100 nodes, private profile, median',
      value: r.discoverMs.median,
      unit: 'ms',
      command,
      notes,
    },
    {
      name: 'sim advertise latency, 100 nodes, private profile, median',
      value: r.advertiseMs.median,
      unit: 'ms',
      command,
      notes,
    },
    { name: 'sim memory per node, 100 nodes (RSS)', value: r.rssPerNodeMiB, unit: 'MiB', command, notes },
  ];
}

export const bench: BenchModule = {
  name: 'scale-sim',
  needsTor: false,
  timeoutMs: 1_200_000,
  run: { benchScaleSim100: () => benchScaleSim100() },
};

simMain(import.meta.url, runScaleSim);
