/**
 * Finds the compiled bench modules beside the runner and reads the `bench` declaration ({@link BenchModule})
 * each exports; a module without a valid one becomes an ERROR row instead of being guessed at.
 * @module
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sortAreas } from './_render.js';
import { areaOf } from './_targets.js';
import type { BenchFn, BenchModule, BenchSetup } from './_types.js';

/** A module as the runner uses it. */
export interface LoadedModule {
  name: string;
  area: string;
  needsTor: boolean;
  benches: [string, BenchFn<BenchSetup | undefined>][];
  setup?: () => Promise<BenchSetup | undefined>;
  timeoutMs?: number;
  error?: string;
}

/** Whether `v` has the shape of a {@link BenchModule}. */
export function isBenchModule(v: unknown): v is BenchModule<BenchSetup | undefined> {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m.name === 'string' &&
    typeof m.needsTor === 'boolean' &&
    (m.setup === undefined || typeof m.setup === 'function') &&
    (m.timeoutMs === undefined || (typeof m.timeoutMs === 'number' && m.timeoutMs > 0)) &&
    typeof m.run === 'object' &&
    m.run !== null &&
    Object.values(m.run).every((f) => typeof f === 'function')
  );
}

/** Turns one module's exports into a {@link LoadedModule} (or one that carries why it cannot run). */
export function fromExports(file: string, exports: Record<string, unknown>): LoadedModule {
  const fallback = file.replace(/\.js$/, '');
  const m = exports.bench;
  if (!isBenchModule(m)) {
    return {
      name: fallback,
      area: areaOf(fallback),
      needsTor: false,
      benches: [],
      error: 'exports no valid `bench` declaration ({ name, needsTor, run })',
    };
  }
  return {
    name: m.name,
    area: areaOf(m.name),
    needsTor: m.needsTor,
    benches: Object.entries(m.run),
    ...(m.setup ? { setup: m.setup } : {}),
    ...(m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {}),
  };
}

/**
 * The bench modules in `dir` (compiled `.js`, not `_` helpers, not `runner`), in report order. With
 * `sources`, only modules whose `.ts` is still in it: dist/ may hold stale output of a renamed file.
 */
export async function loadModules(
  dir: string,
  runner: string,
  sources?: ReadonlySet<string>,
  errorText: (e: unknown) => string = String,
): Promise<LoadedModule[]> {
  const files = (await readdir(dir)).filter(
    (f) =>
      f.endsWith('.js') &&
      !f.startsWith('_') &&
      f !== runner &&
      (!sources || sources.size === 0 || sources.has(f.replace(/\.js$/, '.ts'))),
  );
  const modules: LoadedModule[] = [];
  for (const file of files) {
    try {
      const exports = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
      modules.push(fromExports(file, exports));
    } catch (e) {
      const name = file.replace(/\.js$/, '');
      modules.push({ name, area: areaOf(name), needsTor: false, benches: [], error: errorText(e) });
    }
  }
  const order = sortAreas(modules.map((x) => x.area));
  return modules.sort(
    (a, b) => order.indexOf(a.area) - order.indexOf(b.area) || a.name.localeCompare(b.name),
  );
}
