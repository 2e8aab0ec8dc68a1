// A link's writes (src/agent/messaging-link.ts): serialised, sent without a session timer of their own, and
// bounded by the link's one stall watchdog instead — a link whose writes make no progress for
// LINK_WRITE_STALL_MS is reset, one whose writes progress is never reset, however long it lives.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeFrame, parseEnvelope } from '../../src/agent/messaging-envelope.js';
import { LINK_WRITE_STALL_MS, Link } from '../../src/agent/messaging-link.js';
import type { MessagingSession } from '../../src/agent/messaging-types.js';
import type { MmogitError } from '../../src/errors.js';
import type { ByteChannel } from '../../src/transport/byte-channel.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A session whose sends complete only when the test says so, recording their options. */
function heldSession() {
  const sends: { payload: Uint8Array; options: unknown; done: () => void; fail: (e: Error) => void }[] = [];
  const session: MessagingSession = {
    peer: { publicKey: new Uint8Array(32), onion: 'peer' },
    send: (payload, options) =>
      new Promise<void>((resolve, reject) => {
        sends.push({ payload, options, done: resolve, fail: reject });
      }),
    receive: () => new Promise(() => {}),
    close: async () => {},
  };
  return { session, sends };
}

/** A channel whose abort fails the session's sends in flight, as a reset stream does. */
function recordingChannel(sends: { fail: (e: Error) => void }[]) {
  const aborted: Error[] = [];
  const channel: ByteChannel = {
    readExactly: () => new Promise(() => {}),
    write: async () => {},
    close: async () => {},
    abort: (err) => {
      aborted.push(err);
      for (const s of sends) s.fail(err);
    },
  };
  return { channel, aborted };
}

/** Lets queued promise callbacks run (vi.waitFor would advance fake timers on its own). */
async function settle(sends: unknown[], count: number): Promise<void> {
  for (let i = 0; i < 50 && sends.length < count; i++) await Promise.resolve();
  expect(sends).toHaveLength(count);
}

const ping = (i: number) => ({ t: 'ping' as const, n: i.toString(16).padStart(32, '0') });

describe('Link writes', () => {
  it('go out one at a time in order, each without a session timer of its own', async () => {
    const { session, sends } = heldSession();
    const { channel } = recordingChannel(sends);
    const link = new Link('peer', session, channel, 'tor', 1, 2);
    const written = [link.write(ping(1)), link.write(ping(2)), link.write(ping(3))];
    await settle(sends, 1);
    // the second starts only after the first is done
    await Promise.resolve();
    expect(sends).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      await settle(sends, i + 1);
      sends[i]?.done();
    }
    await Promise.all(written);
    expect(sends.map((s) => decodeFrame(s.payload, 1024, parseEnvelope))).toEqual([
      ping(1),
      ping(2),
      ping(3),
    ]);
    expect(sends.map((s) => s.options)).toEqual(Array(3).fill({ timeoutMs: Number.POSITIVE_INFINITY }));
  });

  it('are reset with ERR_TIMEOUT when they make no progress for LINK_WRITE_STALL_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { session, sends } = heldSession();
    const { channel, aborted } = recordingChannel(sends);
    const link = new Link('peer', session, channel, 'tor', 1, 2);
    const reply = link.request('ping:1', ping(1), new AbortController().signal);
    reply.catch(() => {});
    await settle(sends, 1);
    await vi.advanceTimersByTimeAsync(LINK_WRITE_STALL_MS - 1);
    expect(link.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.closed).toBe(true);
    expect(aborted.map((e) => (e as MmogitError).code)).toEqual(['ERR_TIMEOUT']);
    await expect(reply).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
  });

  it('are never reset while they progress, nor while the link is idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { session, sends } = heldSession();
    const { channel, aborted } = recordingChannel(sends);
    const link = new Link('peer', session, channel, 'tor', 1, 2);
    // Three stall periods of writes, each finishing just before the bound, with more queued behind it.
    const writes = Array.from({ length: 4 }, (_, i) => link.write(ping(i)));
    for (let i = 0; i < 3; i++) {
      await settle(sends, i + 1);
      await vi.advanceTimersByTimeAsync(LINK_WRITE_STALL_MS - 1);
      sends[i]?.done();
    }
    await settle(sends, 4);
    sends[3]?.done();
    await Promise.all(writes);
    // idle for many periods, then one more write
    await vi.advanceTimersByTimeAsync(5 * LINK_WRITE_STALL_MS);
    const last = link.write(ping(9));
    await settle(sends, 5);
    sends[4]?.done();
    await last;
    expect(link.closed).toBe(false);
    expect(aborted).toEqual([]);
  });
});
