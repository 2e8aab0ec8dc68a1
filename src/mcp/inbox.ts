/**
 * Reading the daemon's inbox for MCP: filters, the daemon's receive-order cursor, and a bounded wait
 * (`wait_seconds`) on the daemon's `follow` stream. Everything is read from the daemon on each call; the
 * cursor is the client's, not a copy kept here.
 * @module
 */
import { MmogitError } from '../errors.js';
import type { AgentLink } from './daemon-link.js';

/** A received message as the daemon returns it (docs/protocol.md §5: id, from, type, body, thread, cursor, …). */
export interface InboxMessage {
  id: string;
  from: string;
  text: string;
  timestamp: number;
  verified: boolean;
  /** Position in the agent's receive order. */
  cursor?: string;
  [field: string]: unknown;
}

export interface InboxFilter {
  /** An onion or a contact alias. */
  from?: string | undefined;
  type?: string | undefined;
  thread?: string | undefined;
  /** Only messages sent at or after this time (ms). */
  sinceTime?: number | undefined;
  /** Only messages received after this cursor (a previous read's `next_cursor`). */
  cursor?: string | undefined;
  limit: number;
}

export interface InboxPage {
  messages: InboxMessage[];
  /** Pass back as `cursor` to get only newer messages; unchanged when nothing new arrived. */
  next_cursor: string | null;
}

/** The longest `wait_seconds` a tool call may ask for. */
export const MAX_WAIT_SECONDS = 300;

/** The daemon's filter parameters for `inbox` and `follow`. */
function daemonFilter(filter: InboxFilter): Record<string, unknown> {
  return {
    ...(filter.from !== undefined ? { from: filter.from } : {}),
    ...(filter.type !== undefined ? { type: filter.type } : {}),
    ...(filter.thread !== undefined ? { thread: filter.thread } : {}),
    ...(filter.cursor !== undefined ? { since: filter.cursor } : {}),
  };
}

function page(messages: InboxMessage[], filter: InboxFilter): InboxPage {
  const last = messages[messages.length - 1];
  return { messages, next_cursor: last?.cursor ?? filter.cursor ?? null };
}

const matchesTime = (filter: InboxFilter) => (m: InboxMessage) =>
  filter.sinceTime === undefined || m.timestamp >= filter.sinceTime;

/** How long one read may follow the daemon's stream to collect its page (then it returns what it has). */
export const READ_FOLLOW_MS = 30_000;

/**
 * One read: the oldest `limit` matching messages received after the cursor, in receive order (so a cursor
 * walks forward through a backlog page by page).
 *
 * The daemon's `inbox` keeps the newest `limit`, so the page cannot be asked for directly; asking for all of
 * it made one reply line of every message after the cursor, and past the IPC client's 64 MiB line bound
 * (about 1,400 messages of a peer's largest body) every read from that cursor failed `ERR_TOO_LARGE` for
 * good: a peer could flood the inbox and stop `read_inbox` from ever moving on. Instead the newest match tells
 * where the backlog ends, and the daemon's `follow` stream (one line per message, in receive order) is read
 * up to the page's end and then closed.
 */
export async function readInbox(
  link: AgentLink,
  filter: InboxFilter,
  signal?: AbortSignal,
): Promise<InboxPage> {
  const [end] = await link.call<InboxMessage[]>(
    'inbox',
    { ...daemonFilter(filter), limit: 1 },
    signal ? { signal } : {},
  );
  if (!end) return page([], filter);
  const got: InboxMessage[] = [];
  let last: string | undefined;
  const stop = new AbortController();
  const done = () => stop.abort(new MmogitError('ERR_ABORTED', 'the page is complete'));
  try {
    await link.call('follow', daemonFilter(filter), {
      signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
      timeoutMs: READ_FOLLOW_MS,
      onProgress: (event) => {
        const m = (event as { message?: InboxMessage }).message;
        if (!m || stop.signal.aborted) return;
        last = m.cursor ?? last;
        if (matchesTime(filter)(m)) got.push(m);
        if (got.length >= filter.limit || (end.cursor !== undefined && m.cursor === end.cursor)) done();
      },
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    const code = (e as { code?: string }).code;
    // Our own stop is the normal end; at the deadline, what arrived is still a correct (shorter) page.
    if (!(stop.signal.aborted || (code === 'ERR_TIMEOUT' && last !== undefined))) throw e;
  }
  // The last message seen, matching or not (`since` is filtered here): the next read starts after it.
  return { messages: got, next_cursor: last ?? filter.cursor ?? null };
}

/**
 * Reads the inbox; when nothing matches, follows the daemon's message stream until a matching message arrives,
 * `waitSeconds` pass, or `signal` fires (the host cancelled the call). Returns what arrived (possibly nothing).
 */
export async function waitInbox(
  link: AgentLink,
  filter: InboxFilter,
  waitSeconds: number,
  signal: AbortSignal,
): Promise<InboxPage> {
  const first = await readInbox(link, filter, signal);
  if (first.messages.length > 0) return first;
  const stop = new AbortController();
  const got: InboxMessage[] = [];
  const cursor = first.next_cursor ?? undefined;
  try {
    await link.call('follow', daemonFilter({ ...filter, cursor }), {
      signal: AbortSignal.any([signal, stop.signal]),
      timeoutMs: Math.min(waitSeconds, MAX_WAIT_SECONDS) * 1000,
      onProgress: (event) => {
        const m = (event as { message?: InboxMessage }).message;
        if (!m || !matchesTime(filter)(m) || got.length >= filter.limit) return;
        got.push(m);
        // One message is enough to answer; stop following (the daemon sees the disconnect).
        stop.abort(new MmogitError('ERR_ABORTED', 'a message arrived'));
      },
    });
  } catch (e) {
    if (signal.aborted) throw e;
    const code = (e as { code?: string }).code;
    // The wait elapsing (ERR_TIMEOUT) or our own stop after a message are the normal ends of a wait.
    if (!(code === 'ERR_TIMEOUT' || stop.signal.aborted)) throw e;
  }
  return page(got, { ...filter, cursor });
}

/**
 * Calls `onMessage` for every message the daemon receives from now on, until `signal` fires; reconnects (with
 * a capped backoff) when the daemon goes away and comes back. Used for `resources/subscribe`.
 */
export async function watchInbox(
  link: AgentLink,
  onMessage: (m: InboxMessage) => void,
  signal: AbortSignal,
  onError: (e: unknown) => void = () => {},
  /** Called once the starting point is known (only messages after it are reported), or the first try failed. */
  onReady: () => void = () => {},
): Promise<void> {
  let cursor: string | undefined;
  let delay = 500;
  while (!signal.aborted) {
    try {
      if (cursor === undefined) {
        try {
          const [newest] = await link.call<InboxMessage[]>(
            'inbox',
            { limit: 1 },
            { signal, timeoutMs: 10_000 },
          );
          cursor = newest?.cursor ?? '';
        } finally {
          onReady();
        }
      }
      await link.call('follow', cursor ? { since: cursor } : {}, {
        signal,
        // A follow lasts as long as the subscription; the bound only guards a daemon that hangs silently.
        timeoutMs: 24 * 3_600_000,
        onProgress: (event) => {
          const m = (event as { message?: InboxMessage }).message;
          if (!m) return;
          if (m.cursor) cursor = m.cursor;
          delay = 500;
          onMessage(m);
        },
      });
    } catch (e) {
      if (signal.aborted) return;
      onError(e);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    delay = Math.min(delay * 2, 10_000);
  }
}
