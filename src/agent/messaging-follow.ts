/**
 * Following an agent's inbox: the stored messages after a cursor, then each new one as it is stored, in receive
 * order, once each. The live stream and the store are merged by cursor, so a message stored while the backlog
 * is read is in one or both, never in neither, and a consumer that falls far behind is served from the store
 * instead of an unbounded buffer. The store is read in pages of {@link FOLLOW_PAGE}, each when the consumer
 * has taken the one before, so a backlog of any size costs one page of memory and a slow consumer slows the
 * reading down.
 * @module
 */
import { parseOnionAddress } from '../identity/onion.js';
import type { InboxFilter, ReceivedMessage } from './messaging-types.js';
import { type CursorPosition, decodeCursor, encodeCursor, isAfter, matchesFilter } from './messaging-view.js';

/** A follower that falls this many messages behind reads the rest from the store instead of memory. */
export const FOLLOW_BUFFER_MAX = 1_000;
/** Stored messages read at once: the oldest this many after the follower's position. */
export const FOLLOW_PAGE = 256;

/** Where a follower reads: new messages as they are stored, the store itself, and the end of it all. */
export interface FollowSource {
  /** Calls `fn` for each message stored from now on; returns the unsubscribe function. */
  subscribe(fn: (m: ReceivedMessage) => void): () => void;
  /** The oldest `filter.first` stored messages matching `filter` (after `filter.since`), in receive order. */
  read(filter: Omit<InboxFilter, 'limit'> & { first: number }): Promise<ReceivedMessage[]>;
  /** Fires when the source stops (the follow then ends). */
  stopped: AbortSignal;
}

/**
 * Every message of `source` after `options.since`, then every new one, filtered by `from`, `type` and
 * `thread`; ends when `options.signal` fires or the source stops.
 *
 * @throws `ERR_BAD_CURSOR`, `ERR_INVALID_ONION` (`from`), before the first message.
 */
export async function* followMessages(
  source: FollowSource,
  options: Omit<InboxFilter, 'limit' | 'first'> & { signal?: AbortSignal } = {},
): AsyncGenerator<ReceivedMessage, void, undefined> {
  const { signal, ...filter } = options;
  const from = filter.from ? parseOnionAddress(filter.from).hostname : undefined;
  let last: CursorPosition | undefined = filter.since !== undefined ? decodeCursor(filter.since) : undefined;
  let live: ReceivedMessage[] = [];
  let behind = false;
  let wake: (() => void) | undefined;
  const onEnd = () => wake?.();
  // Listen first, then read the store: a message stored in between is in one or both, never in neither.
  const unsubscribe = source.subscribe((m) => {
    if (live.length >= FOLLOW_BUFFER_MAX) behind = true;
    else live.push(m);
    wake?.();
  });
  signal?.addEventListener('abort', onEnd);
  source.stopped.addEventListener('abort', onEnd);
  const position = (m: ReceivedMessage): CursorPosition => ({ at: m.receivedAt ?? 0, id: m.id });
  try {
    let fromStore = true;
    for (;;) {
      // Page by page: the next page is read once the consumer took every message of this one.
      while (fromStore) {
        const since = last ? encodeCursor(last.at, last.id) : undefined;
        const page = await source.read({ ...filter, from, since, first: FOLLOW_PAGE });
        fromStore = page.length >= FOLLOW_PAGE;
        for (const m of page) {
          if (signal?.aborted) return;
          last = position(m);
          yield m;
        }
        if (signal?.aborted || source.stopped.aborted) return;
      }
      while (live.length > 0 && !behind) {
        const m = live.shift() as ReceivedMessage;
        if (last && !isAfter(position(m), last)) continue;
        if (!matchesFilter(m, { ...filter, from })) continue;
        last = position(m);
        yield m;
        if (signal?.aborted) return;
      }
      if (behind) {
        // Too many waited in memory: drop them and read everything after `last` from the store.
        live = [];
        behind = false;
        fromStore = true;
        continue;
      }
      if (signal?.aborted || source.stopped.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal?.removeEventListener('abort', onEnd);
    source.stopped.removeEventListener('abort', onEnd);
  }
}
