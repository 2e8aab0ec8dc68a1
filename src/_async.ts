/**
 * The async helpers every layer shares: one options type for abortable I/O, one abortable `sleep`, one retry
 * with capped exponential backoff, full jitter and a bounded total, and one abortable `connect`. Each has one
 * abort behaviour: it rejects with the signal's reason in typed form ({@link abortReason}), so a
 * {@link withTimeout} deadline surfaces as its `ERR_TIMEOUT` and a caller's abort as `ERR_ABORTED`.
 * @module
 */
import net from 'node:net';
import type { Writable } from 'node:stream';
import { abortReason, withTimeout } from './errors.js';

/**
 * Options of every network, process and file operation that can wait: the caller's signal and a deadline
 * (each operation names its default). The shape of js-libp2p's `AbortOptions` plus our `timeoutMs`.
 */
export interface AbortOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Waits `ms` milliseconds. On abort (before or during the wait) it rejects with the signal's reason, typed by
 * {@link abortReason}; the timer is cleared and the listener removed either way. With `unref` the wait does not
 * keep the process alive (for a bound raced against other work).
 *
 * @example
 * await sleep(250, { signal }); // throws ERR_TIMEOUT / ERR_ABORTED if `signal` fires first
 */
export function sleep(
  ms: number,
  options: { signal?: AbortSignal | undefined; unref?: boolean } = {},
): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortReason(signal, 'sleep'));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal, 'sleep'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (options.unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * How an operation is retried: at most `attempts` tries (the first included); before retry `n` (1-based) a
 * wait drawn uniformly from `[0, min(maxDelayMs, baseDelayMs · 2^(n-1)))` ("full jitter", so peers that failed
 * together do not retry together); and, with `totalMs`, a bound on the whole: tries and waits together.
 */
export interface RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly totalMs?: number;
}

/** One failed try that will be retried, as reported to {@link RetryOptions.onRetry}. */
export interface RetryEvent {
  /** The try that failed (1-based). */
  attempt: number;
  /** The wait before the next try. */
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  signal?: AbortSignal | undefined;
  /** Whether an error is worth another try (default: every error). A false answer throws it at once. */
  retryable?: (error: unknown, attempt: number) => boolean;
  onRetry?: (event: RetryEvent) => void;
  /** Names the operation in timeout and abort errors (default `'retry'`). */
  what?: string;
  /** Uniform in [0, 1); for tests. Default `Math.random`. */
  random?: () => number;
}

/** The wait before retry `retry` (1-based) under `policy`, for a uniform `u` in [0, 1). */
export function backoffDelay(policy: RetryPolicy, retry: number, u: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(u * cap);
}

/**
 * Runs `fn` until it resolves, `policy.attempts` tries have failed, `retryable` refuses an error, or the bound
 * is reached. `fn` gets the try number and a signal that fires on the caller's abort or at the `totalMs`
 * bound; pass it to the I/O you start.
 *
 * Ends with: `fn`'s value; the last error when the tries are used up, refused, or the bound leaves no time
 * for the next wait; or, when the signal fires during a wait, its reason (typed by {@link abortReason}).
 *
 * @example
 * const sock = await retry((_, signal) => connect({ host, port }, { signal }),
 *   { attempts: 5, baseDelayMs: 500, maxDelayMs: 4_000, totalMs: 30_000 }, { signal });
 */
export async function retry<T>(
  fn: (attempt: number, signal: AbortSignal) => Promise<T>,
  policy: RetryPolicy,
  options: RetryOptions = {},
): Promise<T> {
  const what = options.what ?? 'retry';
  const attempts = Math.max(1, Math.floor(policy.attempts));
  const started = Date.now();
  const signal =
    policy.totalMs !== undefined
      ? withTimeout(options.signal, policy.totalMs, what)
      : (options.signal ?? new AbortController().signal);
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw abortReason(signal, what);
    try {
      return await fn(attempt, signal);
    } catch (error) {
      if (signal.aborted || attempt >= attempts) throw error;
      if (options.retryable && !options.retryable(error, attempt)) throw error;
      const delayMs = backoffDelay(policy, attempt, random());
      if (policy.totalMs !== undefined && Date.now() - started + delayMs >= policy.totalMs) throw error;
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs, { signal }).catch(() => {
        // The caller's abort is the caller's reason. Our own budget can still fire during a wait planned to end
        // inside it (the plan reads Date.now(), timers run on a monotonic clock, and a stalled event loop runs
        // both due timers in one turn): the last error stays the cause, as for a wait we never started.
        if (options.signal?.aborted || policy.totalMs === undefined) throw abortReason(signal, what);
        throw error;
      });
    }
  }
}

/**
 * Settles with `work`, or rejects with the signal's typed reason as soon as `signal` fires, whichever comes
 * first; the listener is removed either way. For calls into code that takes a signal but may not stop on it
 * at once (a dependency's dial or query): our bound holds even then. `work` itself runs on (its rejection
 * after an abort is swallowed).
 *
 * @example
 * await raceAbort(node.dial(ma, { signal }), signal, 'bootstrap dial');
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(abortReason(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => {});
      reject(abortReason(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Where to connect: TCP host and port, or a Unix socket path. */
/**
 * Resolves once `stream` can take more writes: at once when its buffer has room (or it is already destroyed or
 * ended, when no 'drain' will ever come), else at its 'drain' or its 'close'.
 */
export function untilDrained(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded || !stream.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

export type ConnectTarget = { host: string; port: number } | { path: string };

/**
 * Opens a TCP or Unix socket connection that can be aborted and timed out (`net.connect` takes neither).
 * Resolves once connected; rejects with the socket's own error (an `ErrnoException` with `code`) for callers
 * to wrap in their layer's typed error, or with the signal's typed reason (`what` names it). On failure the
 * socket is destroyed; on success every listener this function added is removed.
 *
 * @example
 * const socket = await connect({ host: '127.0.0.1', port }, { signal, timeoutMs: 10_000 });
 */
export function connect(
  target: ConnectTarget,
  options: AbortOptions & { what?: string } = {},
): Promise<net.Socket> {
  const what = options.what ?? `connect ${'path' in target ? target.path : `${target.host}:${target.port}`}`;
  const signal =
    options.timeoutMs !== undefined ? withTimeout(options.signal, options.timeoutMs, what) : options.signal;
  if (signal?.aborted) return Promise.reject(abortReason(signal, what));
  const socket =
    'path' in target
      ? net.connect({ path: target.path })
      : net.connect({ host: target.host, port: target.port });
  return new Promise((resolve, reject) => {
    const done = (): void => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const onConnect = (): void => {
      done();
      resolve(socket);
    };
    const onError = (err: Error): void => {
      done();
      socket.destroy();
      reject(err);
    };
    const onAbort = (): void => {
      done();
      socket.destroy();
      reject(abortReason(signal as AbortSignal, what));
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
