/**
 * `npm run bench`: runs every benchmark in bench/ one after another and rewrites docs/benchmarks.md.
 *
 * Every compiled bench module next to this file (dist/bench/*.js, except this runner and `_` helpers) declares
 * itself as `export const bench: BenchModule = { name, needsTor, run }` (bench/_types.ts; read by
 * bench/_loader.ts). Each function of `run` is called once with `{ setup, signal }`; a module's `setup` is built
 * once before them and closed after them. Modules with `needsTor` share one private Tor network started here
 * (`testnetUp` in a temp dir, exported as `MMOGIT_TEST_NETWORK`) and stopped in `finally` and on SIGINT/SIGTERM.
 * Every step (setup, each benchmark, close) is bounded (the module's `timeoutMs`, else
 * {@link DEFAULT_BENCH_TIMEOUT_MS}, or `--timeout`): past it the benchmark's signal fires and its row becomes an
 * ERROR saying so; the others still run.
 *
 * Each figure is checked against the goals (bench/_targets.ts); a goal no benchmark produced is listed as
 * NOT MEASURED. The report is rendered by bench/_render.ts, the arguments parsed by bench/_args.ts.
 *
 * Usage: `npm run bench [-- --only cli,pqc] [--json] [--write|--no-write] [--out file] [--timeout s] [--list]`
 * (`--json` output is clean with `npm run -s bench -- --json`: without `-s` npm prints its banner on stdout).
 * With `--only` the document is written only when `--write` is given (a partial run would drop rows).
 * @module
 */
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep } from '../src/_async.js';
import { DEFAULT_BENCH_TIMEOUT_MS, HELP, parseArgs, type RunOptions, selected } from './_args.js';
import { type LoadedModule, loadModules } from './_loader.js';
import { fmt, type RunInfo, renderMarkdown, sortAreas } from './_render.js';
import { missingTargets, rowFor } from './_targets.js';
import type { BenchRow, BenchSetup, Verdict } from './_types.js';
import { packageRoot } from './cli.js';

/** How long the shared private Tor network may take to come up. */
const TESTNET_TIMEOUT_MS = 180_000;
/** The command documented at the top of docs/benchmarks.md. */
const RUN_COMMAND = 'npm run bench';

const here = dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const errorText = (e: unknown) =>
  e instanceof Error
    ? `${(e as { code?: string }).code ? `${(e as { code?: string }).code}: ` : ''}${e.message}`
    : String(e);

/**
 * Runs `step` with a signal that fires after `ms`, and gives up on it then: the step's signal tells it to stop
 * and release what it holds, and the returned promise rejects at once with a message naming `what`.
 */
export async function within<T>(
  step: (signal: AbortSignal) => Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} did not finish within ${fmt(ms / 1000)} s`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([step(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The bench modules next to this file, in report order. */
async function modulesHere(): Promise<LoadedModule[]> {
  // Only modules whose bench/<name>.ts still exists: dist/ may hold stale output of a renamed file.
  const sources = new Set(await readdir(join(packageRoot(here), 'bench')).catch(() => [] as string[]));
  return loadModules(here, basename(fileURLToPath(import.meta.url)), sources, errorText);
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 10_000 }, (err, stdout) =>
      resolve(err ? `${cmd}: not found` : stdout.trim()),
    ),
  );
}

async function runInfo(only?: string[]): Promise<RunInfo> {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: only ? `${RUN_COMMAND} -- --only ${only.join(',')}` : RUN_COMMAND,
    machine: {
      cpus: os.availableParallelism?.() ?? cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      memoryGiB: os.totalmem() / 2 ** 30,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
    software: {
      node: process.version,
      tor: (await run('tor', ['--version'])).split('\n')[0]?.replace(/\.$/, '') ?? 'tor: unknown',
      git: await run('git', ['--version']),
    },
    ...(only ? { only } : {}),
  };
}

/** Brings up the shared private network; returns its teardown. */
async function startNetwork(info: RunInfo): Promise<(() => Promise<void>) | undefined> {
  if (process.env.MMOGIT_TEST_NETWORK) {
    info.network = `the running network in \`MMOGIT_TEST_NETWORK\` (${process.env.MMOGIT_TEST_NETWORK})`;
    return undefined;
  }
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { testnetDown, testnetUp, DEFAULT_TESTNET_AUTHORITIES, DEFAULT_TESTNET_RELAYS } = await import(
    '../src/tor/testnet.js'
  );
  const tmp = await mkdtemp(join(os.tmpdir(), 'mmogit-bench-net-'));
  const dir = join(tmp, 'net');
  let down: Promise<void> | undefined;
  const teardown = () => {
    down ??= (async () => {
      const { stopped } = await testnetDown({ dir }).catch(() => ({ stopped: 0 }));
      log(`private network stopped (${stopped} tors)`);
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
    })();
    return down;
  };
  // Ctrl-C / kill: stop the network's tors before leaving (agent tors exit with us: __OwningControllerProcess).
  // testnetUp's own cleanup (its probe client) runs when it is aborted.
  const aborter = new AbortController();
  let starting: Promise<unknown> = Promise.resolve();
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping the private network`);
    aborter.abort(new Error(`interrupted by ${sig}`));
    const settled = Promise.race([starting.catch(() => {}), sleep(5_000)]);
    void settled.then(teardown).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = performance.now();
  log('starting the private Tor network …');
  try {
    starting = testnetUp({
      dir,
      ownerPid: process.pid,
      timeoutMs: TESTNET_TIMEOUT_MS,
      signal: aborter.signal,
      onProgress: (p) => {
        if (p.phase !== 'bootstrap' || p.progress === 100)
          log(`  testnet ${p.phase} ${p.progress}% ${p.summary}`);
      },
    });
    await starting;
  } catch (e) {
    await teardown();
    throw e;
  }
  const secs = (performance.now() - t0) / 1000;
  log(`private network up in ${fmt(secs)} s`);
  info.network = `${DEFAULT_TESTNET_AUTHORITIES} directory authorities + ${DEFAULT_TESTNET_RELAYS} relays on 127.0.0.1 (src/tor/testnet.ts), started by the runner in ${fmt(secs)} s and shared by every tor benchmark`;
  process.env.MMOGIT_TEST_NETWORK = dir;
  return async () => {
    delete process.env.MMOGIT_TEST_NETWORK;
    await teardown();
  };
}

async function runModule(
  m: LoadedModule,
  only: string[] | undefined,
  overrideMs: number | undefined,
  progress: () => string,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const benches = m.benches.filter(([fn]) => selected(only, m.name, fn));
  if (!benches.length) return rows;
  const bound = overrideMs ?? m.timeoutMs ?? DEFAULT_BENCH_TIMEOUT_MS;
  const failAll = (error: string) => {
    for (const [fn] of benches) {
      rows.push({
        area: m.area,
        source: `${m.name}/${fn}`,
        name: `${m.name}/${fn}`,
        verdict: 'ERROR',
        error,
      });
    }
  };
  let setup: BenchSetup | undefined;
  if (m.setup) {
    const make = m.setup;
    log(`${m.name}/setup …`);
    try {
      setup = await within(() => make(), bound, `${m.name}/setup`);
    } catch (e) {
      failAll(`setup failed: ${errorText(e)}`);
      log(`  setup failed: ${errorText(e)}`);
      return rows;
    }
  }
  try {
    for (const [fn, bench] of benches) {
      log(`(${progress()}) ${m.name}/${fn} …`);
      const t0 = performance.now();
      try {
        const got = await within((signal) => bench({ setup, signal }), bound, `${m.name}/${fn}`);
        const seconds = (performance.now() - t0) / 1000;
        for (const r of Array.isArray(got) ? got : [got]) {
          const row = rowFor(m.area, `${m.name}/${fn}`, r, seconds);
          rows.push(row);
          log(
            `  ${fmt(seconds)} s: ${r.name} = ${fmt(r.value)} ${r.unit}` +
              (r.ratio !== undefined ? ` (${fmt(r.ratio)}× anchor ${fmt(r.anchor)})` : '') +
              (row.verdict ? ` ${row.target} → ${row.verdict}` : ''),
          );
        }
      } catch (e) {
        const seconds = (performance.now() - t0) / 1000;
        rows.push({
          area: m.area,
          source: `${m.name}/${fn}`,
          name: `${m.name}/${fn}`,
          verdict: 'ERROR',
          error: errorText(e),
          seconds,
        });
        log(`  ERROR after ${fmt(seconds)} s: ${errorText(e)}`);
      }
    }
  } finally {
    if (setup) {
      const s = setup;
      await within(() => s.close(), bound, `${m.name}/setup close`).catch((e) =>
        log(`  ${m.name} setup close failed: ${errorText(e)}`),
      );
    }
  }
  return rows;
}

/** Runs the selected benchmarks; returns the rows and the run's description. */
export async function runBenchmarks(o: RunOptions): Promise<{ info: RunInfo; rows: BenchRow[] }> {
  const started = performance.now();
  const info = await runInfo(o.only);
  const modules = await modulesHere();
  const rows: BenchRow[] = [];
  for (const m of modules.filter((x) => x.error && selected(o.only, x.name, ''))) {
    rows.push({
      area: m.area,
      source: m.name,
      name: `bench/${m.name}`,
      verdict: 'ERROR',
      error: `cannot load: ${m.error}`,
    });
  }
  const chosen = modules.filter((m) => m.benches.some(([fn]) => selected(o.only, m.name, fn)));
  const total = chosen.reduce(
    (n, m) => n + m.benches.filter(([fn]) => selected(o.only, m.name, fn)).length,
    0,
  );
  let done = 0;
  const progress = () => `${++done}/${total}`;
  const plain = chosen.filter((m) => !m.needsTor);
  const tor = chosen.filter((m) => m.needsTor);
  for (const m of plain) rows.push(...(await runModule(m, o.only, o.timeoutMs, progress)));
  if (tor.length) {
    let stop: (() => Promise<void>) | undefined;
    try {
      stop = await startNetwork(info);
    } catch (e) {
      info.network = `could not be started: ${errorText(e)}`;
      log(`private network failed: ${errorText(e)}`);
      for (const m of tor)
        for (const [fn] of m.benches.filter(([f]) => selected(o.only, m.name, f)))
          rows.push({
            area: m.area,
            source: `${m.name}/${fn}`,
            name: `${m.name}/${fn}`,
            verdict: 'ERROR',
            error: `no private Tor network: ${errorText(e)}`,
          });
    }
    try {
      if (stop || process.env.MMOGIT_TEST_NETWORK)
        for (const m of tor) rows.push(...(await runModule(m, o.only, o.timeoutMs, progress)));
    } finally {
      await stop?.();
    }
  }
  const areas = o.only ? new Set(chosen.map((m) => m.area).concat(o.only)) : undefined;
  rows.push(...missingTargets(rows, areas));
  const order = sortAreas(rows.map((r) => r.area));
  rows.sort((a, b) => order.indexOf(a.area) - order.indexOf(b.area));
  info.seconds = (performance.now() - started) / 1000;
  info.machine.loadAvgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  return { info, rows };
}

async function main(argv: string[]): Promise<number> {
  let o: RunOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${errorText(e)}\n${HELP}\n`);
    return 64;
  }
  if (o.help) {
    process.stderr.write(`${HELP}\n`);
    return 0;
  }
  if (o.list) {
    for (const m of await modulesHere()) {
      for (const [fn] of m.benches)
        process.stdout.write(`${m.area}\t${m.name}/${fn}${m.needsTor ? '\t(tor)' : ''}\n`);
      if (m.error) process.stdout.write(`${m.area}\t${m.name}\tcannot load: ${m.error}\n`);
    }
    return 0;
  }
  const { info, rows } = await runBenchmarks(o);
  const doc = renderMarkdown(info, rows);
  const write = o.write ?? !o.only;
  if (write) {
    const file = o.out ?? join(packageRoot(here), 'docs', 'benchmarks.md');
    await writeFile(file, doc);
    log(`wrote ${file}`);
  } else process.stderr.write(`\n${doc}`);
  if (o.json) process.stdout.write(`${JSON.stringify({ info, rows }, null, 2)}\n`);
  const count = (v: Verdict) => rows.filter((r) => r.verdict === v).length;
  log(
    `${count('PASS')} PASS, ${count('MISS')} MISS, ${count('ERROR')} ERROR, ${count('NOT MEASURED')} not measured; ${fmt(info.seconds)} s`,
  );
  return count('ERROR') ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Benchmarks may leave handles (libp2p timers, sockets) behind: leave explicitly once the report is out.
  process.exit(await main(process.argv.slice(2)));
}
