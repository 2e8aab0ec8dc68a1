/**
 * The write-ahead journal in front of a slower {@link MessageStore} (the agent's git memory store): records are
 * durable once journaled, copied into the backing store in batches in the background, and indexed there by a
 * {@link MessageIndex} when the agent keeps one.
 * @module
 */
import { MessageIndex } from './messaging-index.js';
import {
  JsonlMessageStore,
  type KnownMessage,
  knownKey,
  knownOf,
  type MessageStore,
  type StoredMessage,
  storedMessageKey,
} from './messaging-store.js';

/** A journaled record reaches the backing store at most this long after the journal got it. */
export const DEFAULT_COPY_MAX_DELAY_MS = 1_000;
/** Copies wait until the journal has been quiet this long (or {@link DEFAULT_COPY_MAX_DELAY_MS} passed). */
export const DEFAULT_COPY_IDLE_MS = 50;
/** A batch this large is copied at once. */
export const DEFAULT_COPY_MAX_BATCH = 256;

/** When {@link JournaledMessageStore} copies journaled records into its backing store, and where it indexes them. */
export interface JournalCopyPolicy {
  idleMs?: number;
  maxDelayMs?: number;
  maxBatch?: number;
  /**
   * A {@link MessageIndex} file (agents: `<configDir>/messages.index`): every record copied into the backing store
   * is indexed there, and {@link JournaledMessageStore.known} and the recovery read it instead of listing the
   * backing store. Only for a backing store whose `append` is idempotent (appending a record it holds changes
   * nothing), as the git store's content-addressed entries are: recovery appends again every journaled record
   * the index lacks, which the backing store may hold already (a crash between its append and the index's).
   */
  indexPath?: string;
}

/**
 * A write-ahead journal in front of a slower store (the git memory store takes ~15 ms per commit here): `append`
 * is durable once the record is in the journal (one O_DSYNC write, shared by records arriving together), which
 * is all an ack needs. Records are copied into `backing` in the background, in batches: after the journal has
 * been quiet for `idleMs`, at the latest `maxDelayMs` after the first uncopied record, or once `maxBatch` are
 * waiting. One batch becomes one git commit, and the git work (mostly CPU on the event loop) stays out of the
 * way of messages arriving back to back. Records the backing store does not have yet (a crash, a failed copy)
 * are copied over by {@link recover}, which the first `list()`, `known()` or `append()` runs; the journal is
 * emptied whenever every record in it has reached the backing store (and, with an index, the index).
 *
 * With `policy.indexPath`, each copied batch is also appended to a {@link MessageIndex} before the journal may be
 * emptied, so the index and the journal together name every record in the backing store; the messenger's start
 * reads them, not the backing store (a missing or unreadable index is rebuilt from the backing store once).
 *
 * @example
 * const store = new JournaledMessageStore(messageStoreFromMemory(memory), join(configDir, 'messages.journal'));
 */
export class JournaledMessageStore implements MessageStore {
  private readonly journal: JsonlMessageStore;
  private readonly index: MessageIndex | undefined;
  private readonly policy: Required<Omit<JournalCopyPolicy, 'indexPath'>>;
  /** Journaled records not yet confirmed in the backing store, by key. */
  private readonly unbacked = new Map<string, StoredMessage>();
  /** Journaled records not handed to the backing store yet, oldest first. */
  private waiting: StoredMessage[] = [];
  private firstWaitingAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private copying: Promise<void> | undefined;
  private recovered: Promise<void> | undefined;
  private recoveredDone = false;
  /**
   * What recovery read of the index (and indexed since), kept for the one {@link known} call of a messenger's
   * start so the index is not read twice; dropped by it.
   */
  private startIndex: { records: KnownMessage[]; keys: Set<string> } | undefined;
  /** Journal appends issued but not yet durable (the journal must not be emptied under them). */
  private journalWrites = 0;
  /**
   * {@link MessageStore.read}, only with an index: without one {@link known} lists the backing store, and a
   * caller picking from it and reading would pay for both.
   */
  readonly read?: (known: readonly KnownMessage[]) => Promise<StoredMessage[]>;

  constructor(
    readonly backing: MessageStore,
    journalPath: string,
    private readonly onError: (e: unknown) => void = () => {},
    policy: JournalCopyPolicy = {},
  ) {
    this.journal = new JsonlMessageStore(journalPath);
    this.index = policy.indexPath === undefined ? undefined : new MessageIndex(policy.indexPath);
    if (this.index) this.read = (known) => this.readIndexed(known);
    this.policy = {
      idleMs: policy.idleMs ?? DEFAULT_COPY_IDLE_MS,
      maxDelayMs: policy.maxDelayMs ?? DEFAULT_COPY_MAX_DELAY_MS,
      maxBatch: policy.maxBatch ?? DEFAULT_COPY_MAX_BATCH,
    };
  }

  append(record: StoredMessage): Promise<void> {
    // After recovery the journal write is issued synchronously, so the caller can overlap work with the disk.
    if (this.recoveredDone) return this.appendJournaled(record);
    return this.recover().then(() => this.appendJournaled(record));
  }

  private async appendJournaled(record: StoredMessage): Promise<void> {
    this.journalWrites++;
    try {
      await this.journal.append(record);
    } finally {
      this.journalWrites--;
    }
    this.unbacked.set(storedMessageKey(record), record);
    if (this.waiting.length === 0) this.firstWaitingAt = Date.now();
    this.waiting.push(record);
    this.scheduleCopy();
  }

  private scheduleCopy(): void {
    if (this.copying) return; // the running copy reschedules when it ends
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0) return;
    const due = Math.min(this.policy.idleMs, this.firstWaitingAt + this.policy.maxDelayMs - Date.now());
    if (this.waiting.length >= this.policy.maxBatch || due <= 0) {
      void this.copyNow();
      return;
    }
    this.timer = setTimeout(() => void this.copyNow(), due);
    this.timer.unref?.();
  }

  /** Hands every waiting record to the backing store at once (one commit for the git store). */
  private copyNow(): Promise<void> {
    if (this.copying) return this.copying;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return Promise.resolve();
    this.copying = (async () => {
      const results = await Promise.allSettled(batch.map((r) => this.backing.append(r)));
      let failed: unknown;
      // A failed record stays in the journal; the next recover() copies it again.
      const backed: KnownMessage[] = [];
      batch.forEach((r, i) => {
        const res = results[i];
        if (res?.status === 'fulfilled') backed.push(knownOf(r, res.value));
      });
      results.forEach((res) => {
        if (res.status === 'rejected') failed ??= res.reason;
      });
      let indexed = true;
      if (this.index) {
        // Indexed before they leave `unbacked`, so the journal is emptied only once the index names them; if the
        // index write fails they stay journaled and the next start indexes them.
        await this.index.append(backed).catch((e) => {
          indexed = false;
          failed ??= e;
        });
      }
      if (indexed) {
        for (const known of backed) {
          const k = knownKey(known);
          this.unbacked.delete(k);
          if (this.startIndex && !this.startIndex.keys.has(k)) {
            this.startIndex.keys.add(k);
            this.startIndex.records.push(known);
          }
        }
      }
      if (failed !== undefined) this.onError(failed);
      if (this.unbacked.size === 0 && this.waiting.length === 0 && this.journalWrites === 0) {
        // Every journaled record is in the backing store: empty the journal. The truncation is queued behind no
        // write and ahead of any later append, so it never removes a record that is not in the backing store.
        await this.journal.clear().catch((e) => this.onError(e));
      }
    })().finally(() => {
      this.copying = undefined;
      this.scheduleCopy();
    });
    return this.copying;
  }

  /** Copies journaled records missing from the backing store into it (once; later calls wait for it). */
  recover(): Promise<void> {
    this.recovered ??= (async () => {
      const journaled = await this.journal.list();
      if (this.index) {
        await this.recoverIndexed(this.index, journaled);
      } else if (journaled.length > 0) {
        const have = new Set((await this.backing.list()).map(storedMessageKey));
        for (const r of journaled) {
          if (!have.has(storedMessageKey(r))) {
            await this.backing.append(r);
            have.add(storedMessageKey(r));
          }
        }
        await this.journal.clear();
      }
      this.recoveredDone = true;
    })();
    return this.recovered;
  }

  /**
   * Recovery with an index: rebuilds the index from the backing store if it is missing or not an index, then
   * appends every journaled record the index lacks to the backing store (idempotent there) and to the index.
   */
  private async recoverIndexed(index: MessageIndex, journaled: StoredMessage[]): Promise<void> {
    let loaded = await index.load();
    if (!loaded) {
      // The backing store's own `known` carries each record's address; a plain listing does not.
      const records = this.backing.listKnown
        ? await this.backing.listKnown()
        : (await this.backing.list()).map((r) => knownOf(r));
      await index.rewrite(records);
      loaded = { records, skipped: 0 };
    }
    const have = new Set(loaded.records.map(knownKey));
    const missing = new Map<string, StoredMessage>();
    for (const r of journaled) {
      const k = storedMessageKey(r);
      if (!have.has(k) && !missing.has(k)) missing.set(k, r);
    }
    const toCopy = [...missing.values()];
    // Appended together, so the git store writes them as one commit.
    const addresses = await Promise.all(toCopy.map((r) => this.backing.append(r)));
    const copied = toCopy.map((r, i) => knownOf(r, addresses[i]));
    await index.append(copied);
    if (journaled.length > 0) await this.journal.clear();
    for (const k of copied) {
      have.add(knownKey(k));
      loaded.records.push(k);
    }
    this.startIndex = { records: loaded.records, keys: have };
  }

  /**
   * Every record's identity, thread and time: from the index and the journal when there is an index (no record
   * of the backing store is read), else from {@link list}.
   */
  async known(): Promise<KnownMessage[]> {
    await this.recover();
    if (!this.index) return (await this.list()).map((r) => knownOf(r));
    // Taken before the index is read: a record indexed meanwhile leaves `unbacked` but is then in the file.
    const pending = [...this.unbacked.values()];
    let start = this.startIndex;
    this.startIndex = undefined;
    if (!start) {
      const records = (await this.index.load())?.records ?? [];
      start = { records, keys: new Set(records.map(knownKey)) };
    }
    const { records, keys } = start;
    for (const r of pending) {
      if (!keys.has(storedMessageKey(r))) records.push(knownOf(r));
    }
    return records;
  }

  /**
   * The records `known` names: journaled ones from memory, the rest by their addresses in the backing store
   * ({@link MessageStore.read}); when one has no address (indexed before addresses were, or copied between the
   * caller's {@link known} and this call), from one full listing instead. In the order given.
   */
  private async readIndexed(known: readonly KnownMessage[]): Promise<StoredMessage[]> {
    await this.recover();
    const found = new Map<string, StoredMessage>();
    const rest: KnownMessage[] = [];
    for (const k of known) {
      const r = this.unbacked.get(knownKey(k));
      if (r) found.set(knownKey(k), r);
      else rest.push(k);
    }
    if (rest.length > 0) {
      const read =
        rest.every((k) => k.entry !== undefined) && this.backing.read ? await this.backing.read(rest) : null;
      const wanted = new Set(rest.map(knownKey));
      for (const r of read ?? (await this.list())) {
        const k = storedMessageKey(r);
        if (wanted.has(k) && !found.has(k)) found.set(k, r);
      }
    }
    const out: StoredMessage[] = [];
    for (const k of known) {
      const r = found.get(knownKey(k));
      if (r) out.push(r);
    }
    return out;
  }

  async list(): Promise<StoredMessage[]> {
    await this.recover();
    const backed = await this.backing.list();
    const have = new Set(backed.map(storedMessageKey));
    return [...backed, ...[...this.unbacked.values()].filter((r) => !have.has(storedMessageKey(r)))];
  }

  /** Copies everything journaled so far into the backing store now and waits for it. */
  async flush(): Promise<void> {
    while (this.copying || this.waiting.length > 0) await this.copyNow();
    await this.backing.flush?.();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.journal.close();
    this.startIndex = undefined;
    await this.index?.close();
    await this.backing.close?.();
  }
}
