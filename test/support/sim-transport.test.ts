// The simulated tor-like transport (test/support/sim-transport.ts): its delays are applied, bounded by the
// profile, in order, and drawn from a seeded PRNG (the seed is printed so a run can be repeated).
import { describe, expect, it } from 'vitest';
import { freshSeed, PRIVATE_PROFILE, type SimProfile, seededRandom } from './sim-profile.js';
import { SimNetwork } from './sim-transport.js';

const SEED = Number(process.env.MMOGIT_SIM_SEED ?? freshSeed()) >>> 0;
console.log(`[sim-transport] seed ${SEED}`);

const SLOW: SimProfile = {
  name: 'test',
  setupMs: { min: 200, max: 250 },
  warmSetupMs: { min: 5, max: 10 },
  circuitReuseMs: 60_000,
  oneWayMs: { base: 20, jitter: 10 },
};

describe('sim transport', () => {
  it('the same seed draws the same delays, another seed others', () => {
    const a = new SimNetwork(PRIVATE_PROFILE, SEED);
    const b = new SimNetwork(PRIVATE_PROFILE, SEED);
    const c = new SimNetwork(PRIVATE_PROFILE, SEED + 1);
    const da = Array.from({ length: 20 }, () => a.oneWay());
    expect(Array.from({ length: 20 }, () => b.oneWay())).toEqual(da);
    expect(Array.from({ length: 20 }, () => c.oneWay())).not.toEqual(da);
    const r = seededRandom(SEED);
    for (let i = 0; i < 1000; i++) {
      const u = r();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
  });

  it('set-up delays are cold first, warm within the reuse window, within the profile', () => {
    const net = new SimNetwork(SLOW, SEED);
    const cold = net.setupDelay(1, 2, 0);
    const warm = net.setupDelay(1, 2, 1_000);
    const coldAgain = net.setupDelay(1, 2, 1_000 + SLOW.circuitReuseMs + 1);
    expect(cold).toBeGreaterThanOrEqual(200);
    expect(cold).toBeLessThanOrEqual(250);
    expect(warm).toBeGreaterThanOrEqual(5);
    expect(warm).toBeLessThanOrEqual(10);
    expect(coldAgain).toBeGreaterThanOrEqual(200);
    expect(net.stats).toMatchObject({ coldSetups: 2, warmSetups: 1 });
  });

  it('every write arrives after at least the one-way base, in order, and end() follows the data', async () => {
    const net = new SimNetwork(SLOW, SEED);
    const [a, b] = net.pair();
    const got: Array<{ i: number; late: number }> = [];
    const sentAt = new Map<number, number>();
    b.on('data', (buf: Buffer) => {
      for (const byte of buf) got.push({ i: byte, late: performance.now() - (sentAt.get(byte) ?? 0) });
    });
    const ended = new Promise<void>((resolve) => b.once('end', () => resolve()));
    for (let i = 0; i < 30; i++) {
      sentAt.set(i, performance.now());
      a.write(Buffer.from([i]));
    }
    a.end();
    await ended;
    expect(got.map((g) => g.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // timers may fire up to a millisecond early against performance.now()
    for (const g of got) expect(g.late).toBeGreaterThanOrEqual(SLOW.oneWayMs.base - 1);
    expect(net.stats.oneWayMsMin).toBeGreaterThanOrEqual(SLOW.oneWayMs.base);
    expect(net.stats.oneWayMsMax).toBeLessThan(SLOW.oneWayMs.base + SLOW.oneWayMs.jitter);
    a.destroy();
    b.destroy();
  });

  it('a destroyed end resets its peer after the delay', async () => {
    const net = new SimNetwork(SLOW, SEED);
    const [a, b] = net.pair();
    const closed = new Promise<void>((resolve) => b.once('close', () => resolve()));
    a.destroy();
    await closed;
    expect(b.destroyed).toBe(true);
  });
});

describe('sim transport under real libp2p agents', () => {
  it('10 agents join, one advertises, another discovers it; dials paid a cold set-up', async () => {
    const { startSimNetwork } = await import('./sim-network.js');
    const { Discovery } = await import('../../src/discovery/index.js');
    const net = new SimNetwork(PRIVATE_PROFILE, SEED);
    const { agents, stop } = await startSimNetwork(net, 10, { signal: AbortSignal.timeout(90_000) });
    const ds = agents.map((a) => new Discovery(a.node, a.key));
    try {
      await ds[5]!.advertise(['memory_sync'], { timeoutMs: 30_000 });
      const found: string[] = [];
      for await (const v of ds[8]!.discover('memory_sync', { timeoutMs: 30_000, limit: 1 }))
        found.push(v.advert.onion);
      expect(found).toEqual([agents[5]!.key.onion]);
      expect(net.stats.coldSetups).toBeGreaterThanOrEqual(9);
      expect(net.stats.setupMsTotal).toBeGreaterThanOrEqual(
        net.stats.coldSetups * PRIVATE_PROFILE.setupMs.min,
      );
    } finally {
      for (const d of ds) d.stop();
      await stop();
    }
  }, 120_000);
});
