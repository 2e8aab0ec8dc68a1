import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { sleep } from '../../src/_async.js';
import { MmogitError } from '../../src/errors.js';
import { parseCount } from '../_numbers.js';
import { stdoutRoom, writeLine } from '../_stdout.js';
import { terminalSafeLines } from '../_terminal-safe.js';
import { DAEMON_OPTIONS } from '../args/network.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** The log file the daemon writes (its stdout and stderr). */
const LOG_FILE = 'daemon.log';
/** How often `--follow` looks for new lines. */
const FOLLOW_POLL_MS = 250;
/** At most this much of the file's end is read for `--lines` (the log is append-only and may be large). */
const TAIL_READ_MAX = 4 * 1024 * 1024;
/** `--follow` reads at most this much of the log at once, and the next only when stdout has taken it. */
const FOLLOW_READ_MAX = 256 * 1024;

interface LogArgs extends GlobalOptions {
  follow?: boolean;
  lines?: string;
}

/** Reads `[from, to)` of the file at `path`. */
async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    const { bytesRead } = await fh.read(buf, 0, buf.length, from);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * The first of the internal daemon's flags given to `daemon log` (yargs hands them to it too), as the user
 * typed it (`no-network-bootstrap` for a default-true flag turned off); undefined when none is.
 */
function strayDaemonFlag(given: Record<string, unknown>): string | undefined {
  for (const [flag, option] of Object.entries(DAEMON_OPTIONS)) {
    const value = given[flag];
    const fallback = 'default' in option ? option.default : undefined;
    if (value !== undefined && value !== fallback) return value === false ? `no-${flag}` : flag;
  }
  return undefined;
}

/**
 * `mmogit daemon log [--lines N] [--follow]`: the last N lines (default 100) of `<config-dir>/daemon.log`
 * (`--json`: `{"path","lines":[…]}`); with `--follow`, then each new line as the daemon writes it (`--json`:
 * one `{"line"}` per line, NDJSON), across daemon restarts, until interrupted, at the pace stdout's reader
 * reads. Needs no running daemon.
 */
export default async function daemonLog(args: LogArgs): Promise<CommandResult> {
  // `daemon log --network x` read the log and ignored the flag: refused as any unknown flag is.
  const stray = strayDaemonFlag(args as LogArgs & Record<string, unknown>);
  if (stray !== undefined) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `Unknown argument: ${stray} (see \`mmogit --help\`)`, {
      details: { flag: stray },
    });
  }
  const path = join(configDirOf(args), LOG_FILE);
  const wanted = args.lines === undefined ? 100 : parseCount(args.lines, 'lines', { min: 1, max: 100_000 });
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    if (!args.follow) {
      throw new MmogitError('ERR_NOT_FOUND', `no daemon log at ${path} (the daemon has not run here)`, {
        details: { path },
      });
    }
    size = 0;
  }
  const start = Math.max(0, size - TAIL_READ_MAX);
  const text = size > 0 ? (await readRange(path, start, size)).toString('utf8') : '';
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  if (start > 0) all.shift(); // a partial first line
  const lines = all.slice(-wanted);
  const show = (l: string) => (args.json ? JSON.stringify({ line: l }) : terminalSafeLines(l));
  if (!args.follow) {
    return { data: { path, lines }, human: lines.map((l) => terminalSafeLines(l)).join('\n') };
  }
  // A slow reader of stdout holds the follower to its pace: the log itself is the buffer, not this process.
  for (const l of lines) if (!writeLine(show(l))) await stdoutRoom();
  let offset = size;
  let partial = '';
  let utf8 = new StringDecoder('utf8'); // a character split between two reads is decoded whole
  for (;;) {
    let now: number;
    try {
      now = (await stat(path)).size;
    } catch {
      await sleep(FOLLOW_POLL_MS); // not there (yet): a daemon that starts creates it
      continue;
    }
    if (now < offset) {
      offset = 0; // truncated or replaced: read it from the start
      utf8 = new StringDecoder('utf8');
    }
    if (now === offset) {
      await sleep(FOLLOW_POLL_MS);
      continue;
    }
    const to = Math.min(now, offset + FOLLOW_READ_MAX);
    const chunk = await readRange(path, offset, to);
    offset += chunk.length;
    partial += utf8.write(chunk);
    const fresh = partial.split('\n');
    partial = fresh.pop() ?? '';
    for (const l of fresh) if (!writeLine(show(l))) await stdoutRoom();
  }
}
