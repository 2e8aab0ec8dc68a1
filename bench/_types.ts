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

/** A goal from the issues: `on` (value or ratio) must be `op` `limit`. */
export interface TargetRule {
  /** Stable id, also used for the "not yet measured" placeholder row. */
  id: string;
  area: string;
  /** What the issue asks, in words (shown when the figure is missing). */
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
