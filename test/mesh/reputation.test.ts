// Reputation recovery (src/mesh/reputation.ts): built and failed counts decay with a 1 h half-life, on an
// injected clock, and survive a save and reload.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DECAY_HALF_LIFE_MS, MIN_SCORE, Reputation } from '../../src/mesh/reputation.js';

describe('mesh reputation: recovery', () => {
  it('a relay down for a while sinks to a bounded score, and recovers after it is back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmogit-rep-'));
    try {
      let t = 1_000_000;
      const path = join(dir, 'reputation.json');
      const rep = await Reputation.open(path, { now: () => t });
      rep.built(['r']);
      // down: a failed build every 30 s for 10 h (the standby retry's cap)
      for (let i = 0; i < 1200; i++) {
        t += 30_000;
        rep.failed('r');
      }
      const failed = rep.get('r')?.failed ?? 0;
      // bounded: 120 retries per half-life sum to about 120 / ln 2 ≈ 173, not 1,200
      expect(failed).toBeGreaterThan(150);
      expect(failed).toBeLessThan(200);
      expect(rep.score('r')).toBeLessThan(MIN_SCORE);
      // it comes back; 3 half-lives later the failures weigh 1/8, and a few built circuits lift it over MIN_SCORE
      t += 3 * DECAY_HALF_LIFE_MS;
      expect(rep.get('r')?.failed).toBeCloseTo(failed / 8, 5);
      for (let i = 0; i < 10; i++) rep.built(['r']);
      t += 5 * DECAY_HALF_LIFE_MS;
      expect(rep.score('r')).toBeGreaterThan(MIN_SCORE);
      // persisted as today: a reload sees the same decayed record
      await rep.save();
      const again = await Reputation.open(path, { now: () => t });
      expect(again.score('r')).toBeCloseTo(rep.score('r'), 9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
