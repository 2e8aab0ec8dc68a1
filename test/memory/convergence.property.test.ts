import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MemoryStore } from '../../src/memory/store.js';
import { SyncQuota } from '../../src/memory/sync/index.js';
import { propertyParams } from '../helpers/property.js';
import { fsck, storeOpener, syncPair } from './_helpers.js';

/**
 * The README's strongest claim, "merges never conflict or lose data", as a property: N ≥ 3 stores with random
 * entries, synced with each other in a random order while they keep writing, never lose an entry, and after
 * one pass along a chain and back they all stand on the same head with every entry ever written, verified,
 * in a repository git's fsck accepts.
 */

const open = storeOpener('converge');
const quota = SyncQuota.unlimited();

type Step = { write: number; count: number; private: boolean } | { from: number; to: number };

const program = (n: number) =>
  fc.array(
    fc.oneof(
      fc.record({ write: fc.nat(n - 1), count: fc.integer({ min: 1, max: 3 }), private: fc.boolean() }),
      fc.tuple(fc.nat(n - 1), fc.nat(n - 2)).map(([from, d]) => ({ from, to: (from + 1 + d) % n }) as Step),
    ),
    { minLength: 2, maxLength: 8 },
  );

const scenario = fc
  .integer({ min: 3, max: 4 })
  .chain((n) => fc.record({ n: fc.constant(n), steps: program(n) }));

async function publicIds(s: MemoryStore): Promise<string[]> {
  const all = await s.recall({ visibility: 'public', includeExpired: true });
  expect(all.every((e) => e.verified)).toBe(true);
  return all.map((e) => e.id).sort();
}

describe('N stores synced in any order', () => {
  it('converge on one head with no entry lost', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ n, steps }) => {
        runs++;
        const stores = await Promise.all(Array.from({ length: n }, (_, i) => open(`s${runs}-${i}`)));
        const written = stores.map(() => new Set<string>());
        const privateOf = stores.map(() => new Set<string>());
        const sync = (a: number, b: number) =>
          syncPair(stores[a] as MemoryStore, stores[b] as MemoryStore, { quota });
        let k = 0;
        for (const step of steps) {
          if ('write' in step) {
            const s = stores[step.write] as MemoryStore;
            const entries = await s.rememberMany(
              Array.from({ length: step.count }, () => ({
                type: 'observation' as const,
                content: `entry ${k++}`,
                ...(step.private ? { visibility: 'private' as const } : {}),
              })),
            );
            const ids = (await s.recall({ includeExpired: true }))
              .filter((e) => entries.some((x) => x.signature === e.entry?.signature))
              .map((e) => e.id);
            for (const id of ids) (step.private ? privateOf : written)[step.write]?.add(id);
          } else {
            const before = await Promise.all(
              [step.from, step.to].map((i) => publicIds(stores[i] as MemoryStore)),
            );
            await sync(step.from, step.to);
            // A sync only ever adds: both sides keep what they had.
            for (const [j, i] of [step.from, step.to].entries()) {
              const after = await publicIds(stores[i] as MemoryStore);
              for (const id of before[j] as string[]) expect(after).toContain(id);
            }
          }
        }
        for (let i = 0; i + 1 < n; i++) await sync(i, i + 1);
        for (let i = n - 1; i > 0; i--) await sync(i, i - 1);
        const heads = await Promise.all(stores.map((s) => s.head()));
        expect(new Set(heads).size).toBe(1);
        const everything = [...new Set(written.flatMap((w) => [...w]))].sort();
        for (const [i, s] of stores.entries()) {
          expect(await publicIds(s)).toEqual(everything);
          // Private entries stay where they were written.
          const priv = (await s.recall({ visibility: 'private' })).map((e) => e.id).sort();
          expect(priv).toEqual([...(privateOf[i] as Set<string>)].sort());
          expect(fsck(s.dir).status).toBe(0);
        }
      }),
      propertyParams('N stores converge with no entry lost', { numRuns: 100 }),
    );
  }, 600_000);
});
