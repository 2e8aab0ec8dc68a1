/**
 * The command line the simulation benchmarks share: `[size] [private|public] [seed|-] [timeoutMin]`, one JSON
 * document on stdout, the error's stack on stderr and exit 1 on failure.
 * @module
 */
import { pathToFileURL } from 'node:url';
import { freshSeed } from '../test/support/sim-profile.js';

/** A simulation run: its size, profile name, seed and whole-run bound (ms; the run's default when undefined). */
export type SimRun = (size: number, profile: string, seed: number, timeoutMs?: number) => Promise<unknown>;

/** Runs `run` from the command line when `moduleUrl` is the script node was started with. */
export function simMain(moduleUrl: string, run: SimRun): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  const [size, profile, seed, timeoutMin] = process.argv.slice(2);
  const pick = seed !== undefined && seed !== '-' ? Number(seed) >>> 0 : freshSeed();
  const bound = timeoutMin !== undefined ? Number(timeoutMin) * 60_000 : undefined;
  run(Number(size ?? 100), profile ?? 'private', pick, bound)
    .then((r) => {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      process.exit(0);
    })
    .catch((e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    });
}
