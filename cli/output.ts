import { MmogitError } from '../src/errors.js';
import { terminalSafe, terminalSafeLines } from './_terminal-safe.js';
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

/**
 * Human messages and progress go to stderr, so stdout stays one JSON document under `--json`. Every human
 * printer here shows control characters escaped (_terminal-safe.ts): text from peers or memory cannot drive the
 * terminal. Commands escape each such field with `terminalSafe` too, so a `\n` inside it cannot fake a line.
 */
export function note(line: string): void {
  process.stderr.write(`${terminalSafeLines(line)}\n`);
}

/** A progress line that rewrites itself on a terminal, and prints plain lines otherwise. */
export function progress(line: string): void {
  const safe = terminalSafe(line);
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${safe}`);
  else process.stderr.write(`${safe}\n`);
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\n');
}

export function printResult(result: CommandResult, options: GlobalOptions): void {
  if (result.printed) return;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result.data)}\n`);
  } else if (result.human !== undefined) {
    const human = terminalSafeLines(result.human);
    process.stdout.write(human.endsWith('\n') ? human : `${human}\n`);
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
  // The message may quote a peer's data (an error frame, a log line): one line, escaped.
  process.stderr.write(`mmogit: ${terminalSafe(typed.message)} [${typed.code}]\n`);
  if (options.verbose) {
    const stack = (typed.category === 'internal' && typed.cause instanceof Error ? typed.cause : typed).stack;
    if (stack) process.stderr.write(`${terminalSafeLines(stack)}\n`);
  }
  return exitCodeFor(typed.category);
}
