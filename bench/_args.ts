/**
 * The runner's command line: `--only a,b --json --write --no-write --out f --timeout s --list --help`, and which
 * benchmarks `--only` selects. Pure; tested in test/bench/run.test.ts.
 * @module
 */
import { areaOf } from './_targets.js';

/** How long one benchmark function (or a module's setup) may run when its module declares no bound. */
export const DEFAULT_BENCH_TIMEOUT_MS = 300_000;

/** Parsed command-line options of the runner. */
export interface RunOptions {
  only?: string[];
  json: boolean;
  write?: boolean;
  out?: string;
  /** `--timeout`: overrides every module's own bound. */
  timeoutMs?: number;
  list: boolean;
  help: boolean;
}

/** Parses `--only a,b --json --write --no-write --out f --timeout s --list --help`. */
export function parseArgs(argv: string[]): RunOptions {
  const o: RunOptions = { json: false, list: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--only')
      o.only = [
        ...(o.only ?? []),
        ...value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ];
    else if (flag === '--json') o.json = true;
    else if (flag === '--write') o.write = true;
    else if (flag === '--no-write') o.write = false;
    else if (flag === '--out') o.out = value();
    else if (flag === '--timeout') {
      const s = Number(value());
      if (!(s > 0)) throw new Error('--timeout needs a positive number of seconds');
      o.timeoutMs = s * 1000;
    } else if (flag === '--list') o.list = true;
    else if (flag === '--help' || flag === '-h') o.help = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  return o;
}

/** Whether `--only` tokens select `module/fn` (token = area, module, function, or module/function). */
export function selected(only: string[] | undefined, module: string, fn: string): boolean {
  if (!only?.length) return true;
  const keys = [areaOf(module), module, fn, `${module}/${fn}`].map((k) => k.toLowerCase());
  return only.some((t) => keys.includes(t.toLowerCase()));
}

export const HELP = `usage: npm run bench [-- options]
  --only a,b     run only these areas, modules or functions (cli, pqc, tor, transport/benchTransport10MB, …)
  --json         print one JSON document { info, rows } on stdout (npm prints its banner there too:
                 use \`npm run -s bench -- --json\` or \`node dist/bench/run.js --json\` for clean output)
  --write        write docs/benchmarks.md even with --only;  --no-write: never write it
  --out <file>   write the document there instead of docs/benchmarks.md
  --timeout <s>  per benchmark function, for every module (default: each module's own bound, else ${DEFAULT_BENCH_TIMEOUT_MS / 1000})
  --list         list the benchmark functions and exit`;
