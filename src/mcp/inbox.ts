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

/**
 * One read: the oldest `limit` matching messages received after the cursor, in receive order (so a cursor
 * walks forward through a backlog page by page).
 */
export async function readInbox(
  link: AgentLink,
  filter: InboxFilter,
  signal?: AbortSignal,
): Promise<InboxPage> {
  const all = await link.call<InboxMessage[]>('inbox', daemonFilter(filter), signal ? { signal } : {});
  return page(all.filter(matchesTime(filter)).slice(0, filter.limit), filter);
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
