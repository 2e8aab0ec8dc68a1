/**
 * The single pending reader of a buffered channel (byte-channel.ts, stream-channel.ts): it parks until new data,
 * the end or an error arrives (`wake()`), or its own signal aborts.
 * @module
 */
import { abortReason } from '../errors.js';

/** Parks one reader at a time; `wake()` releases it, an abort of its signal rejects it. */
export interface ReadWaiter {
  /** Releases the parked reader, if any, so it re-checks the buffer. */
  wake(): void;
  /** Resolves on the next `wake()`; rejects with the signal's abort reason (op `read`) if it aborts first. */
  wait(signal?: AbortSignal): Promise<void>;
}

/** A {@link ReadWaiter} for one channel. */
export function readWaiter(): ReadWaiter {
  let waiter: (() => void) | null = null;
  return {
    wake() {
      const w = waiter;
      waiter = null;
      w?.();
    },
    wait(signal) {
      if (signal?.aborted) return Promise.reject(abortReason(signal, 'read'));
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          waiter = null;
          reject(abortReason(signal as AbortSignal, 'read'));
        };
        waiter = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
