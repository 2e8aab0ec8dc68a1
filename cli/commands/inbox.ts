import { sleep } from '../../src/_async.js';
import { ContactBook } from '../../src/agent/contacts.js';
import { callDaemon } from '../../src/agent/daemon.js';
import type { ReceivedMessage } from '../../src/agent/messaging-types.js';
import { decodeCursor } from '../../src/agent/messaging-view.js';
import { hasCode, MmogitError } from '../../src/errors.js';
import { BOUNDS, parseCount } from '../_numbers.js';
import { stdoutRoom, writeLine } from '../_stdout.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeer } from './_peers.js';

interface InboxArgs extends GlobalOptions {
  from?: string;
  type?: string;
  thread?: string;
  since?: string;
  limit?: string;
  follow?: boolean;
}

/** A follow waits this long at most between tries to reach a daemon that went away (it restarts). */
const RECONNECT_MAX_MS = 5_000;
/**
 * A follow call is renewed this often (it follows again from its cursor, unseen): the IPC client keeps each
 * call's deadline timer until it fires, so the deadline must be short enough that calls ended early (a
 * follower hangs up whenever stdout is full, below) do not pile timers up.
 */
const FOLLOW_RENEW_MS = 10 * 60_000;
/** The IPC deadline of one follow call: after its renewal, so it only fires for a client that hangs. */
const FOLLOW_CALL_MS = FOLLOW_RENEW_MS + 60_000;
/**
 * While the reader of stdout is slow, up to this many bytes of messages wait in stdout's buffer; beyond it the
 * follower hangs up until stdout drained. Large enough that a reconnect is rare next to what it delivers.
 */
const STDOUT_BUDGET = 1024 * 1024;

/** A message's time for people; an out-of-range timestamp is shown as it is instead of throwing. */
function timeOf(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? t(String(ms)) : d.toISOString();
}

function line(m: ReceivedMessage, aliases: Map<string, string[]>): string {
  // Everything from a peer passes terminalSafe: its text must not be able to rewrite the line it is shown in.
  const who = aliases.get(m.from)?.[0] ?? `${t(String(m.from).slice(0, 16))}…`;
  const kind = m.type === 'message' ? '' : `[${t(String(m.type))}] `;
  const thread = m.thread !== m.id ? `  (thread ${t(String(m.thread).slice(0, 8))})` : '';
  return `${timeOf(m.timestamp)}  ${who}  ${m.verified ? '✓' : '✗ UNVERIFIED'}  ${kind}${t(String(m.text))}${thread}`;
}

/**
 * `mmogit inbox [--from P] [--type T] [--thread ID] [--since CURSOR] [--limit N]` → the messages in receive
 * order, each with its `cursor`. With `--follow`, then every new message as it arrives (`--json`: one NDJSON
 * line each, flushed), across daemon restarts, until interrupted; at the pace stdout's reader reads.
 */
export default async function inbox(args: InboxArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  if (args.since !== undefined) decodeCursor(args.since); // a bad cursor fails here, before the daemon
  const from = args.from !== undefined ? await resolvePeer(args, args.from) : undefined;
  const filter = {
    ...(from !== undefined ? { from } : {}),
    ...(args.type !== undefined ? { type: args.type } : {}),
    ...(args.thread !== undefined ? { thread: args.thread } : {}),
    ...(args.since !== undefined ? { since: args.since } : {}),
  };
  const limit = args.limit === undefined ? undefined : parseCount(args.limit, 'limit', BOUNDS.limit);
  const aliases = await new ContactBook(configDir).aliases().catch(() => new Map<string, string[]>());
  if (!args.follow) {
    const items = await callDaemon<ReceivedMessage[]>(configDir, 'inbox', {
      ...filter,
      ...(limit !== undefined ? { limit } : {}),
    });
    const human = items.length === 0 ? 'no messages' : items.map((m) => line(m, aliases)).join('\n');
    return { data: items, human };
  }
  if (limit !== undefined) throw new MmogitError('ERR_INVALID_ARGUMENT', '--limit does not go with --follow');
  // Not running at all is the user's to fix; once it was there, a disconnect is a restart to wait out.
  await callDaemon(configDir, 'ping', {}, { timeoutMs: 5_000 });
  let cursor = args.since;
  let wait = 250;
  for (;;) {
    // The IPC client reads its socket as fast as lines come: to stop taking messages while stdout is full, the
    // follower hangs up (the daemon's follow then stops reading its store) and, once stdout drained, follows
    // again from the cursor of the last message it wrote, so nothing is lost or repeated in between.
    const hangUp = new AbortController();
    const renew = setTimeout(() => hangUp.abort(new MmogitError('ERR_ABORTED', 'renewed')), FOLLOW_RENEW_MS);
    let room: Promise<void> | undefined;
    try {
      await callDaemon<{ cursor: string | null }>(
        configDir,
        'follow',
        { ...filter, ...(cursor !== undefined ? { since: cursor } : {}) },
        {
          timeoutMs: FOLLOW_CALL_MS,
          signal: hangUp.signal,
          onProgress: (p) => {
            // After the hang-up the rest of the socket's last chunk still comes: it is read again later.
            if (hangUp.signal.aborted) return;
            wait = 250;
            const m = p.message as ReceivedMessage | undefined;
            if (!m) return;
            cursor = m.cursor ?? cursor;
            if (writeLine(args.json ? JSON.stringify(m) : line(m, aliases), STDOUT_BUDGET)) return;
            room = stdoutRoom();
            hangUp.abort(new MmogitError('ERR_ABORTED', 'stdout is full'));
          },
        },
      );
    } catch (e) {
      // A bad cursor or filter stays bad; only a daemon that went away (or is still starting) is waited for.
      if (!hangUp.signal.aborted && !hasCode(e, 'ERR_DAEMON_NOT_RUNNING') && !hasCode(e, 'ERR_DAEMON_IPC')) {
        throw e;
      }
    } finally {
      clearTimeout(renew);
    }
    if (hangUp.signal.aborted) {
      await room;
      continue;
    }
    note(`mmogit: the daemon went away; resuming from ${cursor ?? 'the start'} when it is back`);
    await sleep(wait);
    wait = Math.min(wait * 2, RECONNECT_MAX_MS);
  }
}
