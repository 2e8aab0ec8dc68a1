import { MmogitError } from '../src/errors.js';
import { exitCodeFor } from './exit-codes.js';

/** Global flags every command gets. */
export interface GlobalOptions {
  configDir?: string;
  json?: boolean;
  verbose?: boolean;
}

/** What a command returns: the data (`--json` prints it) and how to show it to a person. */
export interface CommandResult<T = unknown> {
  data: T;
  human?: string | undefined;
  /** Non-zero exit with a result (e.g. `discover` found nothing in time). */
  exitCode?: number;
  /** The command already printed its result (long-running commands print before they block). */
  printed?: boolean;
}

/** Human messages and progress go to stderr, so stdout stays one JSON document under `--json`. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A progress line that rewrites itself on a terminal, and prints plain lines otherwise. */
export function progress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}`);
  else process.stderr.write(`${line}\n`);
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\n');
}

export function printResult(result: CommandResult, options: GlobalOptions): void {
  if (result.printed) return;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result.data)}\n`);
  } else if (result.human !== undefined) {
    process.stdout.write(result.human.endsWith('\n') ? result.human : `${result.human}\n`);
  }
}

/** Prints an error (one line, or JSON on stdout with `--json`) and returns the exit code. */
export function reportError(error: unknown, options: GlobalOptions): number {
  const typed =
    error instanceof MmogitError
      ? error
      : new MmogitError('ERR_INTERNAL', error instanceof Error ? error.message : String(error), {
          cause: error,
        });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ error: typed.toJSON() })}\n`);
  }
  process.stderr.write(`mmogit: ${typed.message} [${typed.code}]\n`);
  if (options.verbose) {
    const stack = (typed.category === 'internal' && typed.cause instanceof Error ? typed.cause : typed).stack;
    if (stack) process.stderr.write(`${stack}\n`);
  }
  return exitCodeFor(typed.category);
}
