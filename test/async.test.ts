// The cross-layer async helpers of src/_async.ts against real timers and real loopback sockets.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, connect, type RetryEvent, raceAbort, retry, sleep } from '../src/_async.js';
import { MmogitError, TimeoutError, withTimeout } from '../src/errors.js';

describe('sleep', () => {
  it('resolves after the wait', async () => {
    const t = performance.now();
    await sleep(30);
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
  });

  it("rejects with the signal's typed reason, before and during the wait", async () => {
    const before = new AbortController();
    before.abort();
    await expect(sleep(10_000, { signal: before.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const deadline = withTimeout(undefined, 20, 'the deadline');
    const err = await sleep(10_000, { signal: deadline }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toContain('the deadline');
  });

  it('keeps a caller-made MmogitError reason as it is', async () => {
    const ac = new AbortController();
    const reason = new MmogitError('ERR_CONNECTION_CLOSED', 'peer left');
    setTimeout(() => ac.abort(reason), 5);
    await expect(sleep(10_000, { signal: ac.signal })).rejects.toBe(reason);
  });
});

describe('backoffDelay', () => {
  const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1_000 };
  it('draws from [0, min(max, base·2^(n-1))): full jitter, capped', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => backoffDelay(policy, n, 0.999_999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(backoffDelay(policy, 7, 0)).toBe(0);
    expect(backoffDelay(policy, 3, 0.5)).toBe(200);
  });
});

describe('retry', () => {
  const policy = { attempts: 4, baseDelayMs: 20, maxDelayMs: 40 };

  it('retries until success, reporting each wait', async () => {
    const events: RetryEvent[] = [];
    const result = await retry(
      async (attempt) => {
        if (attempt < 3) throw new Error(`try ${attempt}`);
        return attempt;
      },
      policy,
      { random: () => 0.5, onRetry: (e) => events.push(e) },
    );
    expect(result).toBe(3);
    expect(events.map((e) => [e.attempt, e.delayMs, (e.error as Error).message])).toEqual([
      [1, 10, 'try 1'],
      [2, 20, 'try 2'],
    ]);
  });

  it('throws the last error once the attempts are used up', async () => {
    let calls = 0;
    const err = await retry(
      async (attempt) => {
        calls++;
        throw new Error(`try ${attempt}`);
      },
      policy,
      { random: () => 0 },
    ).catch((e: unknown) => e);
    expect(calls).toBe(4);
    expect((err as Error).message).toBe('try 4');
  });

  it('throws at once when retryable refuses the error', async () => {
    let calls = 0;
    const final = new MmogitError('ERR_TRANSPORT_POLICY', 'no');
    await expect(
      retry(
        async () => {
          calls++;
          throw final;
        },
        policy,
        { retryable: (e) => !(e instanceof MmogitError) },
      ),
    ).rejects.toBe(final);
    expect(calls).toBe(1);
  });

  it('bounds the whole retry: no wait that would end past totalMs, and the signal handed to fn fires at it', async () => {
    const t = performance.now();
    let calls = 0;
    const err = await retry(
      async () => {
        calls++;
        throw new Error('down');
      },
      { attempts: 1_000, baseDelayMs: 50, maxDelayMs: 50, totalMs: 200 },
      { random: () => 0.999 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('down');
    expect(calls).toBeLessThanOrEqual(5);
    expect(performance.now() - t).toBeLessThan(3_000); // 1,000 attempts × 50 ms without the budget

    const seen = await retry(
      (_, signal) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, totalMs: 50 },
      { what: 'hung op' },
    ).catch((e: unknown) => e);
    expect(seen).toBeInstanceOf(TimeoutError);
    expect((seen as Error).message).toContain('hung op');
  });

  it('raceAbort: our bound holds over work that ignores its signal; work that settles first wins', async () => {
    const ac = new AbortController();
    const never = new Promise<never>(() => {});
    setTimeout(() => ac.abort(), 20);
    await expect(raceAbort(never, ac.signal, 'stuck dial')).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const timed = withTimeout(undefined, 20, 'stuck query');
    await expect(raceAbort(never, timed, 'stuck query')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    const ok = new AbortController();
    expect(await raceAbort(Promise.resolve(7), ok.signal, 'fast')).toBe(7);
    await expect(raceAbort(Promise.reject(new Error('own')), ok.signal, 'fails')).rejects.toThrow('own');
    // a signal that already fired refuses at once, whatever the work
    ok.abort();
    await expect(raceAbort(Promise.resolve(1), ok.signal, 'late')).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
  });

  it("rejects with the caller's typed reason when aborted during a wait", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const err = await retry(
      async () => {
        throw new Error('down');
      },
      { attempts: 10, baseDelayMs: 10_000, maxDelayMs: 10_000 },
      { signal: ac.signal, random: () => 0.999, what: 'dial x' },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_ABORTED' });
    expect((err as Error).message).toContain('dial x');
  });
});

describe('connect', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  const listen = async (): Promise<number> => {
    const server = net.createServer((s) => s.end('hi'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as net.AddressInfo).port;
  };

  it('connects and leaves no listener of its own behind', async () => {
    const socket = await connect({ host: '127.0.0.1', port: await listen() }, { timeoutMs: 5_000 });
    expect(socket.listenerCount('connect')).toBe(0);
    expect(socket.listenerCount('error')).toBe(0);
    const data = await new Promise<string>((r) => socket.once('data', (d) => r(String(d))));
    expect(data).toBe('hi');
    socket.destroy();
  });

  it("rejects with the socket's own error for a closed port", async () => {
    const port = await listen();
    await new Promise((r) => servers.pop()?.close(r));
    await expect(connect({ host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects with the typed reason when aborted before or while connecting', async () => {
    const port = await listen();
    const before = new AbortController();
    before.abort();
    await expect(connect({ host: '127.0.0.1', port }, { signal: before.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
    const during = new AbortController();
    const pending = connect({ host: '127.0.0.1', port }, { signal: during.signal, what: 'control port' });
    during.abort(); // the connect event cannot have fired yet: it needs a turn of the event loop
    const err = await pending.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_ABORTED' });
    expect((err as Error).message).toContain('control port');
  });
});
