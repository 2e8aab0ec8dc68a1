import type { ErrorCategory } from '../src/errors.js';

/**
 * The one place that turns failures into exit codes (docs/cli.md §Exit codes). Commands throw; they never call
 * `process.exit`.
 */
export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  config: 3,
  tor: 4,
  network: 5,
  security: 6,
  'not-found': 7,
  daemon: 8,
  aborted: 130,
} as const satisfies Record<ErrorCategory | 'ok', number>;

export function exitCodeFor(category: ErrorCategory): number {
  return EXIT_CODES[category];
}
