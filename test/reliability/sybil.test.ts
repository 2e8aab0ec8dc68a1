// Sybil flood on discovery, on a loopback DHT of real libp2p nodes (our kad-dht, no tor): SYBILS live nodes
// with throw-away keys advertise `memory_sync` (valid, signed adverts; each node provides from itself, as
// kad-dht requires), beside 3 genuine agents. kad-dht's findProviders ends once it has k = 20 providers, so
// past ~20 Sybils a stranger's search can miss the genuine agents altogether. Before: a stranger's
// `discover(limit 3)`; after: the same with the genuine agents as contacts (`prefer`), and a second search by
// a discoverer that saw them live once. Size: MMOGIT_SYBILS (default 12; `npm run reliability -- sybil 100`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/discovery/index.js';
import { onionFromPublicKey } from '../../src/identity/onion.js';
import { type LoopbackAgent, startLoopbackNetwork } from '../support/loopback.js';

const SYBILS = Math.max(1, Number(process.env.MMOGIT_SYBILS ?? 12) | 0);
const N = SYBILS + 10;
const GENUINE = [3, 4, 5];
const LIMIT = 3;
const SERVICE = 'memory_sync';

let agents: LoopbackAgent[] = [];
let stop: (() => Promise<void>) | undefined;
let ds: Discovery[] = [];
let genuine: string[] = [];

beforeAll(
  async () => {
    ({ agents, stop } = await startLoopbackNetwork(N, { joinConcurrency: 10 }));
    ds = agents.map((a) => new Discovery(a.node, a.key));
    for (const i of GENUINE) await ds[i]!.advertise([SERVICE], { timeoutMs: 60_000 });
    genuine = GENUINE.map((i) => agents[i]!.key.onion).sort();
    const t0 = Date.now();
    // the Sybils: nodes 10.. advertise with their throw-away keys, ten at a time
    for (let s = 10; s < N; s += 10)
      await Promise.all(
        agents.slice(s, s + 10).map((_, j) => ds[s + j]!.advertise([SERVICE], { timeoutMs: 60_000 })),
      );
    process.stderr.write(`[sybil] ${SYBILS} sybil adverts in ${Date.now() - t0} ms\n`);
  },
  600_000 + SYBILS * 5_000,
);

afterAll(async () => {
  for (const d of ds) d.stop();
  await stop?.();
}, 60_000);

/** One search: the onions in order, how many genuine, the time until all 3 genuine were yielded (or null). */
async function search(
  d: Discovery,
  prefer: Uint8Array[] = [],
  limit = LIMIT,
  onLive?: (publicKey: Uint8Array) => void,
) {
  const t0 = Date.now();
  const onions: string[] = [];
  let allGenuineMs: number | null = null;
  for await (const v of d.discover(SERVICE, {
    limit,
    prefer,
    timeoutMs: 120_000,
    ...(onLive ? { onLive } : {}),
  })) {
    onions.push(v.advert.onion);
    if (allGenuineMs === null && genuine.every((g) => onions.includes(g))) allGenuineMs = Date.now() - t0;
  }
  const found = onions.filter((o) => genuine.includes(o)).length;
  return { onions, found, allGenuineMs, ms: Date.now() - t0 };
}

describe(`Sybil flood: ${SYBILS} throw-away adverts for ${SERVICE} beside 3 genuine agents`, () => {
  it('before: a stranger’s discover(limit 3) returns whatever providers come first', async () => {
    const first = await search(ds[6]!);
    const whole = await search(ds[7]!, [], Number.POSITIVE_INFINITY);
    console.log(
      `[reliability] sybil ${SYBILS}, before: discover(limit ${LIMIT}) returned ${first.found}/3 genuine in ${first.ms} ms; ` +
        `the whole search: ${whole.onions.length} adverts, ${whole.found}/3 genuine, all 3 after ${whole.allGenuineMs} ms (search ${whole.ms} ms)`,
    );
    // every advert is valid: the search fills its limit, genuine or not
    expect(first.onions).toHaveLength(LIMIT);
  }, 300_000);

  it('after: contacts come first, in a search of limit 3 as in a search of 10', async () => {
    const prefer = GENUINE.map((i) => agents[i]!.key.publicKey);
    const r = await search(ds[8]!, prefer);
    const ten = await search(ds[9]!, prefer, 10);
    console.log(
      `[reliability] sybil ${SYBILS}, after (genuine agents are contacts): discover(limit ${LIMIT}) returned ` +
        `${r.found}/3 genuine in ${r.ms} ms; discover(limit 10): ${ten.found}/3, the first 3 genuine, all after ${ten.allGenuineMs} ms`,
    );
    expect(r.onions.sort()).toEqual(genuine);
    expect(ten.onions.slice(0, 3).sort()).toEqual(genuine);
  }, 300_000);

  it('after: an agent seen live in one search is preferred in the next, without being a contact', async () => {
    // A first search (here one that had the genuine agents as contacts) remembers whoever answered from itself
    // (live). Which peers those are is recorded through onLive, so the check does not depend on which of them
    // resolves first.
    const live = new Set<string>();
    await search(
      ds[2]!,
      GENUINE.map((i) => agents[i]!.key.publicKey),
      LIMIT,
      (pk) => live.add(onionFromPublicKey(pk)),
    );
    expect(live.size).toBeGreaterThanOrEqual(LIMIT);
    // The next search names no contact: the remembered live peers come first, strangers only after them.
    const r = await search(ds[2]!, [], LIMIT);
    console.log(
      `[reliability] sybil ${SYBILS}, after (seen live before): discover(limit 3) returned ${r.found}/3 genuine in ${r.ms} ms (${live.size} remembered live)`,
    );
    expect(r.onions).toHaveLength(LIMIT);
    for (const o of r.onions) expect(live.has(o)).toBe(true);
  }, 300_000);
});
