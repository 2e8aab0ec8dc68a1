// Scale test of the DHT logic: 50 real libp2p nodes over loopback TCP in one process (no tor).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/discovery/index.js';
import { type LoopbackAgent, startLoopbackNetwork } from '../support/loopback.js';

const N = 50;
const PROVIDERS = 5;

describe(`discovery with ${N} loopback nodes`, () => {
  let agents: LoopbackAgent[] = [];
  let stop: (() => Promise<void>) | undefined;
  let ds: Discovery[] = [];

  beforeAll(async () => {
    ({ agents, stop } = await startLoopbackNetwork(N));
    ds = agents.map((a) => new Discovery(a.node, a.key));
  }, 600_000);

  afterAll(async () => {
    for (const d of ds) d.stop();
    await stop?.();
  }, 60_000);

  it('every discoverer finds every provider, and only verified adverts', async () => {
    // providers spread over the network (not the bootstrap nodes); discover never yields the caller itself
    const providers = Array.from({ length: PROVIDERS }, (_, i) => 5 + i * 9);
    for (const i of providers) await ds[i]!.advertise(['memory_sync'], { timeoutMs: 60_000 });
    const expected = providers.map((i) => agents[i]!.key.onion).sort();
    for (const i of [2, 17, 30, 40, 49]) {
      const found = new Set<string>();
      for await (const v of ds[i]!.discover('memory_sync', { timeoutMs: 60_000, limit: PROVIDERS })) {
        found.add(v.advert.onion);
      }
      expect([...found].sort(), `discoverer ${i}`).toEqual(expected);
    }
    // lookups by onion from far nodes
    for (const [from, to] of [
      [3, providers[0]!],
      [48, providers[4]!],
      [25, providers[2]!],
    ] as const) {
      const v = await ds[from]!.lookup(agents[to]!.key.onion, { timeoutMs: 30_000 });
      expect(v?.advert.pubkey).toBe(agents[to]!.key.publicKeyHex);
    }
  }, 300_000);
});
