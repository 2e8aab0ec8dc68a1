import { resolveConfigDir } from '../../src/identity/store.js';
import type { GlobalOptions } from '../output.js';

/** The config dir for this invocation: `--config-dir`, else `$MMOGIT_HOME`, else `~/.mmogit`. */
export function configDirOf(args: GlobalOptions): string {
  return resolveConfigDir(args.configDir);
}

/** Splits "a, b,,c" into ["a","b","c"]. */
export function splitList(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
