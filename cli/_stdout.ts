/**
 * Writing a stream of lines to stdout at the reader's pace. `process.stdout.write` never blocks on a pipe: when
 * the reader is slow (`mmogit inbox --follow --json | my-agent`) it keeps every line in memory, so a follower
 * that goes on taking items from its source while stdout is full grows without bound. A follower writes with
 * {@link writeLine} and, when it says stdout is full, takes nothing more from its source until
 * {@link stdoutRoom} resolves.
 *
 * A reader that goes away (EPIPE) is not seen here: cli/main.ts ends the process quietly at stdout's 'error',
 * before the drain this waits for could come.
 */
import { untilDrained } from '../src/_async.js';

/**
 * Writes one line (`text` and a newline) to stdout. False when more than `budget` bytes now wait in stdout's
 * buffer (with the default 0: as soon as `write` says the buffer is full); the line is kept and written later,
 * but take nothing more from the source until {@link stdoutRoom}.
 */
export function writeLine(text: string, budget = 0): boolean {
  return process.stdout.write(`${text}\n`) || process.stdout.writableLength <= budget;
}

/**
 * Resolves once stdout can take more: at once when its buffer has room, else at its 'drain' (or 'close').
 *
 * @example
 * for await (const item of source) if (!writeLine(show(item))) await stdoutRoom();
 */
export function stdoutRoom(): Promise<void> {
  return untilDrained(process.stdout);
}
