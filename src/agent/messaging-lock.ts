/**
 * A per-peer lock: one request at a time per peer, so a burst of sends to a peer that has no link yet makes a
 * single dial, and requests go out in call order.
 * @module
 */
import { abortReason } from '../errors.js';

/**
 * Runs functions one at a time per key, in call order; waiting is abortable.
 *
 * @example
 * const lock = new PeerLock();
 * await lock.run(peer, signal, () => link.request(…));
 */
export class PeerLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier `run` for `peer` has finished; rejects if `signal` fires while waiting. */
  async run<T>(peer: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(peer) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.tails.set(peer, tail);
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(abortReason(signal, `waiting to send to ${peer}`));
        const onAbort = () => reject(abortReason(signal, `waiting to send to ${peer}`));
        signal.addEventListener('abort', onAbort, { once: true });
        prev.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      return await fn();
    } finally {
      release();
      // Nobody queued behind us: drop the entry so the map does not grow with every peer ever contacted.
      if (this.tails.get(peer) === tail) this.tails.delete(peer);
    }
  }

  /** Number of peers with a holder or waiters (for tests: it returns to 0 when idle). */
  get size(): number {
    return this.tails.size;
  }
}
