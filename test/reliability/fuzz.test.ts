// Fuzzing of every parser of untrusted input (docs/reliability.md "Fuzzing"). Each target runs its parser on
// mutations of real captured bytes and on random bytes; a case fails when the parser throws anything but a typed
// MmogitError, accepts a forgery, breaks a limit, or (async targets) takes over CASE_TIMEOUT_MS.
//
// `npm test` runs RUNS cases per target with a fixed seed; `npm run fuzz` runs 100,000 per target with a fresh
// seed (printed). Replay a failure with MMOGIT_FC_SEED=<seed> MMOGIT_FUZZ_RUNS=<n> npx vitest run
// test/reliability/fuzz.test.ts -t '<target>'; keep the shrunk input as a regression case in its target.
import fc from 'fast-check';
import { afterAll, describe, it } from 'vitest';
import type { FuzzTarget } from './fuzz-kit.js';
import { FILE_TARGETS } from './fuzz-targets-files.js';
import { PQC_TARGETS } from './fuzz-targets-pqc.js';
import { RECORD_TARGETS } from './fuzz-targets-records.js';
import { REQUEST_TARGETS } from './fuzz-targets-requests.js';
import { stopProxy, TOR_TARGETS } from './fuzz-targets-tor.js';

const FIXED_SEED = 20261203;
const RUNS = Number(process.env.MMOGIT_FUZZ_RUNS) > 0 ? Number(process.env.MMOGIT_FUZZ_RUNS) : 300;
const long = RUNS > 1000;
const fromEnv = Number(process.env.MMOGIT_FC_SEED);
const SEED = Number.isSafeInteger(fromEnv) ? fromEnv : long ? (Math.random() * 2 ** 31) | 0 : FIXED_SEED;
const CASE_TIMEOUT_MS = 10_000;

const TARGETS: readonly FuzzTarget[] = [
  ...TOR_TARGETS,
  ...PQC_TARGETS,
  ...RECORD_TARGETS,
  ...FILE_TARGETS,
  ...REQUEST_TARGETS,
];
const results: string[] = [];

afterAll(async () => {
  await stopProxy();
  process.stderr.write(`[fuzz] seed ${SEED}, ${RUNS} cases per target\n${results.join('\n')}\n`);
});

describe('fuzzing of untrusted-input parsers', () => {
  for (const t of TARGETS) {
    // Some targets take one fixed input (nothing to vary): run them a few times only.
    const runs = t.name.includes('impostor') ? Math.min(RUNS, 50) : RUNS;
    it(`${t.name}: typed refusals only, no forgery, bounded`, { timeout: long ? 0 : 120_000 }, async () => {
      process.stderr.write(`[fuzz] ${t.name}: seed ${SEED}, ${runs} cases\n`);
      let slowest = 0;
      const timed = async (input: unknown) => {
        const at = performance.now();
        await t.check(input);
        slowest = Math.max(slowest, performance.now() - at);
      };
      const started = performance.now();
      const examples = (t.regressions ?? []).map((x) => [x] as [unknown]);
      const params = { seed: SEED, numRuns: runs, endOnFailure: true, examples };
      if (t.async) {
        await fc.assert(fc.asyncProperty(t.input, timed), { ...params, timeout: CASE_TIMEOUT_MS });
      } else {
        fc.assert(
          fc.property(t.input, (input) => {
            const at = performance.now();
            t.check(input);
            slowest = Math.max(slowest, performance.now() - at);
          }),
          params,
        );
      }
      const ms = performance.now() - started;
      const line = `| ${t.name} | ${runs} | ${(ms / 1000).toFixed(1)} s | ${((ms * 1000) / runs).toFixed(0)} µs | ${slowest.toFixed(1)} ms |`;
      results.push(line);
      process.stderr.write(`[fuzz] done ${line}\n`);
    });
  }
});
