/**
 * Shared shapes of the benchmarks and the runner (bench/run.ts). Every bench file returns this `BenchResult`
 * (re-exported through bench/_shared.ts).
 * @module
 */

/** What one benchmark function returns (one or an array of these). */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** A reference measured in the same run (bare tor socket, `git fetch`, `git fast-import`, `node -e 0`). */
  anchor?: number;
  /** value ÷ anchor (or, for throughputs, ours ÷ bare). */
  ratio?: number;
  /** The goal; which field it bounds and in which direction is decided by the runner's target table. */
  target?: number;
  /** Optional hints for targets the runner's table does not know: which field `target` bounds… */
  targetOn?: 'value' | 'ratio';
  /** …and whether the figure must be at most (`<=`) or at least (`>=`) the target. */
  targetOp?: '<=' | '>=';
  /** The command that produced the figure when run alone. */
  command: string;
  notes?: string;
}

/** A goal: `on` (value or ratio) must be `op` `limit`. */
export interface TargetRule {
  /** Stable id, also used for the "not yet measured" placeholder row. */
  id: string;
  area: string;
  /** What the goal asks, in words (shown when the figure is missing). */
  label: string;
  /** Matches the `name` of the result this goal applies to. */
  match: RegExp;
  on: 'value' | 'ratio';
  op: '<=' | '>=';
  limit: number;
  /** Unit of `limit` when `on` is `value` (shown in the table). */
  unit?: string;
}

/** The outcome of checking one figure against its goal. */
export type Verdict = 'PASS' | 'MISS' | 'ERROR' | 'NOT MEASURED' | '';

/** One line of the report. */
export interface BenchRow {
  area: string;
  /** `module/function` that produced it (empty for placeholders). */
  source: string;
  name: string;
  value?: number;
  unit?: string;
  anchor?: number;
  ratio?: number;
  /** Human form of the goal, e.g. "ratio ≤ 1.1" or "≤ 150 ms". */
  target?: string;
  verdict: Verdict;
  command?: string;
  notes?: string;
  error?: string;
  /** Wall time the benchmark function took, in seconds (shared by the rows it returned). */
  seconds?: number;
}

/** What a benchmark function gets: its module's setup (when it declares one) and a signal for its time bound. */
export interface BenchContext<S> {
  setup: S;
  /** Fires when the benchmark's bound elapses (or the run is interrupted): stop and release what it holds. */
  signal: AbortSignal;
}

/** A benchmark function: one result or several. */
export type BenchFn<S> = (context: BenchContext<S>) => Promise<BenchResult | BenchResult[]>;

/** What a module's setup returns: anything its benchmarks share, and how to release it. */
export interface BenchSetup {
  close(): Promise<void>;
}

/**
 * What every bench module exports as `bench`: the runner reads nothing else. `name` is the module's name
 * (`pqc-tor`; its area is the part before the first `-`); `run` lists its benchmarks by function name, in
 * report order.
 */
export interface BenchModule<S extends BenchSetup | undefined = undefined> {
  name: string;
  /** Runs on the private Tor network the runner starts once for all such modules. */
  needsTor: boolean;
  /** Built once before the module's benchmarks, closed after them. */
  setup?: () => Promise<S>;
  run: Readonly<Record<string, BenchFn<S>>>;
  /** Bound of one benchmark, of the setup, and of its close (ms); the runner's default when absent. */
  timeoutMs?: number;
}
