import type fc from 'fast-check';

/**
 * fast-check parameters with a seed that is printed before the run, so any failure (or a hang) can be replayed
 * with `MMOGIT_FC_SEED=<seed> npx vitest run <file>`. `MMOGIT_FC_RUNS=<n>` overrides the number of runs (a
 * longer hunt by hand).
 */
export function propertyParams<T>(name: string, params: fc.Parameters<T> = {}): fc.Parameters<T> {
  const fromEnv = Number(process.env.MMOGIT_FC_SEED);
  const seed = Number.isSafeInteger(fromEnv) ? fromEnv : (Math.random() * 2 ** 31) | 0;
  const runs = Number(process.env.MMOGIT_FC_RUNS);
  process.stderr.write(`[property] ${name}: seed ${seed}\n`);
  return { ...params, seed, ...(Number.isSafeInteger(runs) && runs > 0 ? { numRuns: runs } : {}) };
}
