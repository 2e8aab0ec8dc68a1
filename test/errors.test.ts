import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadline, describeValue, MmogitError, TimeoutError } from '../src/errors.js';

describe('describeValue', () => {
  it('prints primitives and quotes and cuts strings', () => {
    expect(describeValue('abc')).toBe('"abc"');
    expect(describeValue('x'.repeat(50), 10)).toBe(`"${'x'.repeat(10)}…"`);
    expect(describeValue(3)).toBe('3');
    expect(describeValue(false)).toBe('false');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
  });

  it('never calls into an object, however hostile', () => {
    const throwing = {
      toString() {
        throw new Error('called');
      },
      [Symbol.toPrimitive]() {
        throw new Error('called');
      },
    };
    // Each of these makes String(x) or `${x}` throw a TypeError or run the peer's code.
    expect(() => String({ toString: '' })).toThrow(TypeError);
    expect(describeValue({ toString: '' })).toBe('an object');
    expect(describeValue(throwing)).toBe('an object');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue([{ toString: 1 }])).toBe('an array');
  });
});

describe('deadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts with a TimeoutError naming the operation once the time is up, unless cleared first', () => {
    vi.useFakeTimers();
    const due = deadline(undefined, 1_000, 'the query');
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(999);
    expect(due.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(due.signal.aborted).toBe(true);
    expect(due.signal.reason).toBeInstanceOf(TimeoutError);
    expect((due.signal.reason as Error).message).toContain('the query: timed out after 1000 ms');

    // cleared: the timer is gone at once (nothing waits out the 30 s) and the signal never fires
    const done = deadline(undefined, 30_000, 'a send');
    expect(vi.getTimerCount()).toBe(1);
    done.clear();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(done.signal.aborted).toBe(false);
  });

  it("follows the caller's signal as well", () => {
    const ac = new AbortController();
    const due = deadline(ac.signal, 30_000, 'a ping');
    ac.abort(new MmogitError('ERR_ABORTED', 'stop'));
    expect(due.signal.aborted).toBe(true);
    expect((due.signal.reason as MmogitError).code).toBe('ERR_ABORTED');
    due.clear();
  });
});
