// Admission of pending inbound onion connections (src/transport/_inbound-admission.ts): above the cap the oldest
// pending connection is evicted (the newcomer is never refused), a connection that has not started a handshake
// is dropped at its deadline, and every pending upgrade at the upgrade deadline. Fake timers: no real time passes.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type EvictReason,
  HANDSHAKE_START_BYTES,
  PendingInbound,
} from '../../src/transport/_inbound-admission.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Admits `n` connections; `dropped[i]` is the reason connection i was dropped, if it was. */
function admitMany(p: PendingInbound, n: number, dropped: (EvictReason | undefined)[]) {
  return Array.from({ length: n }, () => {
    const i = dropped.push(undefined) - 1;
    return p.admit((reason) => {
      expect(dropped[i]).toBeUndefined(); // dropped at most once
      dropped[i] = reason;
    });
  });
}

describe('PendingInbound', () => {
  it('above the cap, a newcomer evicts the oldest pending connection instead of being refused', () => {
    const p = new PendingInbound({ maxPending: 3 });
    const dropped: (EvictReason | undefined)[] = [];
    const slots = admitMany(p, 3, dropped);
    // progress does not protect: an old connection that sent a whole handshake's bytes is still the oldest
    slots[0]?.received(10 * HANDSHAKE_START_BYTES);
    slots[1]?.release(); // one upgrade finished: its slot is free, nobody is evicted for the next
    admitMany(p, 1, dropped);
    expect(dropped).toEqual([undefined, undefined, undefined, undefined]);
    admitMany(p, 2, dropped); // full: connections 0 and 2 (the oldest still pending) go, in that order
    expect(dropped).toEqual(['evicted', undefined, 'evicted', undefined, undefined, undefined]);
    expect(p.size).toBe(3);
    p.clear();
  });

  it('drops a connection that has not started a handshake in time, and any upgrade at its deadline', () => {
    const onEvict = vi.fn();
    const p = new PendingInbound({
      maxPending: 10,
      handshakeStartTimeoutMs: 1_000,
      upgradeTimeoutMs: 5_000,
      onEvict,
    });
    const dropped: (EvictReason | undefined)[] = [];
    const [silent, trickle, started, done] = admitMany(p, 4, dropped);
    // a slow sender: bytes, but fewer than a handshake's first flight in the time
    trickle?.received(HANDSHAKE_START_BYTES - 1);
    started?.received(HANDSHAKE_START_BYTES - 2);
    started?.received(2);
    done?.received(HANDSHAKE_START_BYTES);
    vi.advanceTimersByTime(999);
    expect(dropped).toEqual([undefined, undefined, undefined, undefined]);
    vi.advanceTimersByTime(1);
    expect(dropped).toEqual(['handshake-start-timeout', 'handshake-start-timeout', undefined, undefined]);
    done?.release();
    vi.advanceTimersByTime(4_000);
    expect(dropped).toEqual([
      'handshake-start-timeout',
      'handshake-start-timeout',
      'upgrade-timeout',
      undefined,
    ]);
    expect(onEvict.mock.calls).toEqual([
      ['handshake-start-timeout'],
      ['handshake-start-timeout'],
      ['upgrade-timeout'],
    ]);
    silent?.release(); // releasing a dropped slot is harmless
    expect(p.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clear() drops every pending connection and leaves no timer behind', () => {
    const p = new PendingInbound({ maxPending: 10 });
    const dropped: (EvictReason | undefined)[] = [];
    admitMany(p, 4, dropped);
    p.clear();
    expect(dropped).toEqual(['evicted', 'evicted', 'evicted', 'evicted']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
