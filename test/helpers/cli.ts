import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runNode } from './run-node.js';

/** The real `mmogit` binary (bin/mmogit.js → dist/cli/main.js; `npm test` builds dist first). */
export const MMOGIT_BIN = fileURLToPath(new URL('../../bin/mmogit.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as one JSON document (throws if it is not exactly one). */
  json<T = unknown>(): T;
}

/** Spawns `mmogit …args` and collects its exit code and output (bounded by `timeoutMs`). */
export async function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<CliRun> {
  if (!existsSync(BUILT)) throw new Error('dist/ is missing: run `npm run build` (npm test does it)');
  const r = await runNode(MMOGIT_BIN, args, { timeoutMs: options.timeoutMs ?? 60_000, ...options });
  if (r.timedOut) throw new Error(`mmogit ${args.join(' ')} timed out\n${r.stderr}`);
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    json<T>() {
      return JSON.parse(r.stdout) as T;
    },
  };
}
