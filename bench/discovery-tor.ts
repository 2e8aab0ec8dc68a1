/**
 * Discovery benchmark on the private Tor network: 10 agent nodes (onion3 transport over SOCKS, tor-only) on
 * 5 agent tors, one bootstrap agent, 3 providers of `memory_sync`. Reports the median time of a fresh
 * `discover('memory_sync')` until the first verified advertisement and the median `advertise` time.
 * The network is `MMOGIT_TEST_NETWORK` (a testnet dir) when set, else a private one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/discovery-tor.js`.
 * @module
 */
import '../src/_polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { kadDHT } from '@libp2p/kad-dht';
import { bootstrapDialer, Discovery, dhtServiceOptions, isDiscoveryNode } from '../src/discovery/index.js';
import { AgentKey } from '../src/identity/keys.js';
import { startTor, type TorHandle } from '../src/tor/daemon.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { onionMultiaddr } from '../src/transport/addr.js';
import { type AgentNode, createAgentNode } from '../src/transport/node.js';
import { type BenchResult, median, round as roundTo, useNetwork } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/discovery-tor.js';
/** The goal for discover latency on the private Tor network (median). */
export const DISCOVER_TOR_TARGET_MS = 3_000;
const AGENTS = 10;
const TORS = 5;
const PROVIDERS = 3;
const VPORT = 4001;

const round = (x: number): number => roundTo(x, 0);

/** 10 agents on the private Tor network: discover latency (first verified advert) and publish latency. */
export async function benchDiscoveryTor10(): Promise<BenchResult[]> {
  const tmp = await mkdtemp(join(tmpdir(), 'mmogit-bench-discovery-'));
  const { network, release } = await useNetwork();
  const tors: TorHandle[] = [];
  const nodes: AgentNode[] = [];
  const ds: Discovery[] = [];
  try {
    tors.push(
      ...(await Promise.all(
        Array.from({ length: TORS }, (_, i) =>
          startTor({ dataDir: join(tmp, `tor${i}`), network, timeoutMs: 120_000 }),
        ),
      )),
    );
    const agents = await Promise.all(
      Array.from({ length: AGENTS }, async (_, i) => {
        const key = AgentKey.random();
        const tor = tors[i % TORS] as TorHandle;
        const node = await createAgentNode({
          key,
          socks: { host: tor.socksHost, port: tor.socksPort },
          onion: { serviceId: key.serviceId, virtualPort: VPORT },
          torDialAttempts: 6,
          services: { dht: kadDHT(dhtServiceOptions()) },
        });
        nodes.push(node);
        await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
        const lib = node.libp2p;
        if (!isDiscoveryNode(lib)) throw new Error('the agent node runs no DHT service');
        const d = new Discovery(lib, key);
        ds.push(d);
        return {
          key,
          node,
          lib,
          d,
          addr: onionMultiaddr(key.onion, VPORT, node.peerId.toString()).toString(),
        };
      }),
    );
    const boot = agents[0]!.addr;
    const joinStart = performance.now();
    await Promise.all(agents.slice(1).map((a) => bootstrapDialer(a.lib, [boot], { retry: { attempts: 7 } })));
    const joinSeconds = (performance.now() - joinStart) / 1000;
    const publish: number[] = [];
    for (const a of agents.slice(1, 1 + PROVIDERS)) {
      const t = performance.now();
      await a.d.advertise(['memory_sync'], { timeoutMs: 120_000 });
      publish.push(performance.now() - t);
    }
    const first: number[] = [];
    const discoverers = agents.slice(1 + PROVIDERS);
    for (let round2 = 0; round2 < 2; round2++) {
      for (const a of discoverers) {
        const t = performance.now();
        for await (const _ of a.d.discover('memory_sync', { timeoutMs: 60_000, limit: 1 })) {
          first.push(performance.now() - t);
        }
      }
    }
    const notes = `${AGENTS} agents on ${TORS} agent tors, joined in ${joinSeconds.toFixed(1)} s; ${PROVIDERS} providers; ${first.length}/${2 * discoverers.length} discover runs found an advert (first run per agent includes cold circuits); load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`;
    return [
      {
        name: `discover latency, first verified advert, ${AGENTS} agents on the private Tor network, median`,
        value: round(first.length ? median(first) : Number.NaN),
        unit: 'ms',
        target: DISCOVER_TOR_TARGET_MS,
        command: COMMAND,
        notes: first.length
          ? `${notes}; min ${round(Math.min(...first))}, max ${round(Math.max(...first))} ms`
          : notes,
      },
      {
        name: `publish latency (record + provider), ${AGENTS} agents on the private Tor network, median`,
        value: round(median(publish)),
        unit: 'ms',
        command: COMMAND,
        notes: `${publish.length} advertise() calls; max ${round(Math.max(...publish))} ms`,
      },
    ];
  } finally {
    for (const d of ds) d.stop();
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await Promise.all(tors.map((t) => t.stop().catch(() => {})));
    await release().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Discovery among 10 agents on the private Tor network. */
export const bench: BenchModule = {
  name: 'discovery-tor',
  needsTor: true,
  run: { benchDiscoveryTor10: () => benchDiscoveryTor10() },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchDiscoveryTor10()
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    });
}
