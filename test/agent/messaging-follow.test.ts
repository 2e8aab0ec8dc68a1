// Following an inbox (src/agent/messaging-follow.ts) over a stand-in store: a backlog larger than one page is
// read a page at a time, each page only once the consumer took the one before, and the live messages that
// arrive meanwhile are merged in by cursor, once each.
import { describe, expect, it } from 'vitest';
import { FOLLOW_PAGE, followMessages } from '../../src/agent/messaging-follow.js';
import type { ReceivedMessage } from '../../src/agent/messaging-types.js';
import { fakeMessage, fakeSource } from './follow-helpers.js';

describe('followMessages over a backlog larger than a page', () => {
  it('reads the store a page at a time, the next only once the consumer took the last', async () => {
    const total = Math.floor(FOLLOW_PAGE * 2.5);
    const f = fakeSource(Array.from({ length: total }, (_, i) => fakeMessage(i + 1)));
    const abort = new AbortController();
    const it = followMessages(f.source, { signal: abort.signal });
    const got: string[] = [];
    // One message taken: one page read, not the backlog.
    got.push(((await it.next()).value as ReceivedMessage).id);
    expect(f.reads).toEqual([{ since: undefined, first: FOLLOW_PAGE, got: FOLLOW_PAGE }]);
    while (got.length < FOLLOW_PAGE) got.push(((await it.next()).value as ReceivedMessage).id);
    expect(f.reads).toHaveLength(1);
    // A live message stored in the middle of the backlog is delivered once, after it, in receive order.
    f.store(fakeMessage(total + 1, 'live'));
    while (got.length < total + 1) got.push(((await it.next()).value as ReceivedMessage).id);
    expect(got).toEqual(Array.from({ length: total + 1 }, (_, i) => fakeMessage(i + 1).id));
    // Pages of FOLLOW_PAGE, each after the last one delivered, until a short one.
    expect(f.reads.map((r) => r.first)).toEqual([FOLLOW_PAGE, FOLLOW_PAGE, FOLLOW_PAGE]);
    expect(f.reads.map((r) => r.since)).toEqual([
      undefined,
      fakeMessage(FOLLOW_PAGE).cursor,
      fakeMessage(2 * FOLLOW_PAGE).cursor,
    ]);
    expect(f.reads.map((r) => r.got)).toEqual([FOLLOW_PAGE, FOLLOW_PAGE, total - 2 * FOLLOW_PAGE + 1]);
    // Then it waits for new ones.
    const next = it.next();
    f.store(fakeMessage(total + 2, 'later'));
    expect(((await next).value as ReceivedMessage).text).toBe('later');
    abort.abort();
    expect((await it.next()).done).toBe(true);
  });

  it('starts after the given cursor, and a page size of messages exactly is followed by one empty read', async () => {
    const f = fakeSource(Array.from({ length: FOLLOW_PAGE + 10 }, (_, i) => fakeMessage(i + 1)));
    const abort = new AbortController();
    const it = followMessages(f.source, { since: fakeMessage(10).cursor, signal: abort.signal });
    const got: number[] = [];
    for (let i = 0; i < FOLLOW_PAGE; i++) got.push(((await it.next()).value as ReceivedMessage).timestamp);
    expect(got).toEqual(Array.from({ length: FOLLOW_PAGE }, (_, i) => i + 11));
    const next = it.next();
    await new Promise((r) => setImmediate(r));
    expect(f.reads.map((r) => r.got)).toEqual([FOLLOW_PAGE, 0]);
    abort.abort();
    expect((await next).done).toBe(true);
  });
});
