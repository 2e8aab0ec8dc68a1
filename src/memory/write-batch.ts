import { MmogitError } from '../errors.js';
import type { EncodedEntry } from './entry.js';
import { PRIVATE_REF, PUBLIC_REF } from './refs.js';

/**
 * Write batching: entries enqueued in the same turn of the event loop become one commit per branch, and every
 * write (and sync's integration) runs one after the other through {@link WriteBatch.exclusive}. Private entries
 * are committed first, so an envelope on the synced branch never exists without its entry kept here.
 * @module
 */

interface PendingWrite {
  ref: string;
  entries: EncodedEntry[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class WriteBatch {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `commit(ref, entries)` writes one commit of `entries` on `ref`. */
  constructor(private readonly commit: (ref: string, entries: EncodedEntry[]) => Promise<unknown>) {}

  /** Queues entries (each to its branch by visibility); resolves once every one is committed. */
  enqueue(entries: readonly EncodedEntry[]): Promise<void> {
    if (this.closed) return Promise.reject(new MmogitError('ERR_INVALID_ARGUMENT', 'memory store is closed'));
    const byRef = new Map<string, EncodedEntry[]>();
    for (const e of entries) {
      const ref = e.entry.visibility === 'private' ? PRIVATE_REF : PUBLIC_REF;
      byRef.set(ref, [...(byRef.get(ref) ?? []), e]);
    }
    const waits = [...byRef].map(
      ([ref, list]) =>
        new Promise<void>((resolve, reject) => this.pending.push({ ref, entries: list, resolve, reject })),
    );
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Writes issued in the same turn of the event loop become one commit.
      setImmediate(() => {
        this.flushScheduled = false;
        void this.exclusive(() => this.flush());
      });
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Runs `fn` after every earlier exclusive operation (writes, sync integration) has finished. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    for (const ref of [PRIVATE_REF, PUBLIC_REF]) {
      const mine = batch.filter((p) => p.ref === ref);
      if (mine.length === 0) continue;
      try {
        await this.commit(
          ref,
          mine.flatMap((p) => p.entries),
        );
        for (const p of mine) p.resolve();
      } catch (e) {
        for (const p of mine) p.reject(e);
      }
    }
  }

  /** Waits for pending writes; later writes are refused. */
  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.exclusive(() => undefined);
    this.closed = true;
  }
}
