// Stand-ins for following an inbox (src/agent/messaging-follow.ts): received messages and a store of them.
import type { FollowSource } from '../../src/agent/messaging-follow.js';
import type { ReceivedMessage } from '../../src/agent/messaging-types.js';
import { decodeCursor, encodeCursor, isAfter } from '../../src/agent/messaging-view.js';

const FROM = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd';

/** A received message at receive time `i` (ids are 32 hex characters, so its cursor decodes). */
export function fakeMessage(i: number, text = `m${i}`): ReceivedMessage {
  const id = i.toString(16).padStart(32, '0');
  return {
    id,
    from: FROM,
    text,
    timestamp: i,
    verified: true,
    v: 2,
    type: 'message',
    body: text,
    thread: id,
    receivedAt: i,
    cursor: encodeCursor(i, id),
  } as ReceivedMessage;
}

/** An in-memory follow source: `stored` is the store, `store(m)` stores one more and tells the followers. */
export function fakeSource(stored: ReceivedMessage[]) {
  const listeners = new Set<(m: ReceivedMessage) => void>();
  const reads: { since: string | undefined; first: number; got: number }[] = [];
  const stop = new AbortController();
  const source: FollowSource = {
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async read(filter) {
      const since = filter.since !== undefined ? decodeCursor(filter.since) : undefined;
      const after = stored.filter((m) => !since || isAfter({ at: m.receivedAt ?? 0, id: m.id }, since));
      const page = after.slice(0, filter.first);
      reads.push({ since: filter.since, first: filter.first, got: page.length });
      return page;
    },
    stopped: stop.signal,
  };
  return {
    source,
    reads,
    stop: () => stop.abort(),
    store(m: ReceivedMessage) {
      stored.push(m);
      for (const fn of listeners) fn(m);
    },
  };
}
