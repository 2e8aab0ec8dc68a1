/**
 * Benchmark of the CLI's start-up: {@link benchTorAddressColdStart} spawns `node bin/mmogit.js tor address`
 * (a fresh node process each time: module loading, config read, onion derivation, output) against
 * `node -e 0` spawned the same way in the same run. Target: median ≤ 150 ms.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/cli.js`.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BenchResult, median } from './_shared.js';
import type { BenchModule } from './_types.js';

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/cli.js';
/**
 * The goal for the median cold start of `mmogit tor address`, as a ratio to `node -e 0` in the same run: it was
 * ≤ 150 ms when `node -e 0` took 83–90 ms here (150 ÷ 83 ≈ 1.8), and absolute times swing with the load.
 */
export const TOR_ADDRESS_TARGET_RATIO = 1.8;
/** The absolute form of the goal, kept in the notes. */
export const TOR_ADDRESS_GOAL_MS = 150;
/** A spawned process that takes longer than this is a failure, not a sample. */
const SPAWN_TIMEOUT_MS = 30_000;

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** The package root: the nearest parent directory holding `bin/mmogit.js` (works from bench/ and dist/bench/). */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'mmogit.js'))) return dir;
    if (dirname(dir) === dir) throw new Error(`bin/mmogit.js not found above ${from}`);
  }
}

/** Spawns `node <args>`; resolves with wall time (ms) from spawn to exit, and stdout. Rejects on exit ≠ 0. */
function timedNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ ms: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), SPAWN_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      if (code === 0) resolve({ ms, stdout, stderr });
      else
        reject(
          new Error(`node ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim().slice(-500)}`),
        );
    });
  });
}

/**
 * Median wall time of `runs` spawns of `node bin/mmogit.js tor address --config-dir <tmp>` after `mmogit init`
 * into that dir, interleaved with as many spawns of `node -e 0` (the anchor: node's own start-up).
 * Needs the compiled CLI in dist/ (`npm run bench` runs tsc first).
 */
export async function benchTorAddressColdStart(
  options: { runs?: number; warmup?: number } = {},
): Promise<BenchResult> {
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 2;
  const root = packageRoot();
  const bin = join(root, 'bin', 'mmogit.js');
  const configDir = await mkdtemp(join(tmpdir(), 'mmogit-bench-cli-'));
  // No inherited DEBUG (stderr logging) or MMOGIT_HOME: measure the plain command.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DEBUG;
  delete env.MMOGIT_HOME;
  delete env.NODE_OPTIONS;
  try {
    await timedNode([bin, 'init', '--config-dir', configDir], env, root);
    const address = ['--config-dir', configDir, 'tor', 'address'];
    const check = await timedNode([bin, ...address], env, root);
    const onion = check.stdout.trim();
    if (!/^[a-z2-7]{56}\.onion$/.test(onion)) throw new Error(`unexpected tor address output: ${onion}`);
    const cli: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const b = await timedNode(['-e', '0'], env, root);
      const c = await timedNode([bin, ...address], env, root);
      if (c.stdout.trim() !== onion) throw new Error('tor address changed between runs');
      if (i >= warmup) {
        bare.push(b.ms);
        cli.push(c.ms);
      }
    }
    const value = median(cli);
    const anchor = median(bare);
    return {
      name: 'cli: `mmogit tor address` cold start',
      value: round(value),
      unit: 'ms',
      anchor: round(anchor),
      ratio: round(value / anchor, 2),
      target: TOR_ADDRESS_TARGET_RATIO,
      targetOn: 'ratio',
      targetOp: '<=',
      command: COMMAND,
      notes:
        `median of ${runs} spawns (after ${warmup} warm-up) of \`node bin/mmogit.js --config-dir <tmp> tor address\`, ` +
        `interleaved with \`node -e 0\` (anchor); min/max ${round(Math.min(...cli))}/${round(Math.max(...cli))} ms; ` +
        `absolute goal ≤ ${TOR_ADDRESS_GOAL_MS} ms: ${value <= TOR_ADDRESS_GOAL_MS ? 'met' : 'not met'} in this run`,
    };
  } finally {
    await rm(configDir, { recursive: true, force: true });
  }
}

/** `mmogit tor address` against node's own start-up. */
export const bench: BenchModule = {
  name: 'cli',
  needsTor: false,
  timeoutMs: 120_000,
  run: { benchTorAddressColdStart: () => benchTorAddressColdStart() },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await benchTorAddressColdStart(), null, 2)}\n`);
}
