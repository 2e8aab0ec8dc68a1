/**
 * Where the messenger keeps sent and received messages. {@link MessageStore} is the narrow port the
 * {@link Messenger} needs; the agent's git-backed memory store is adapted to it (see messaging-adapters.ts),
 * and {@link JsonlMessageStore} is a plain append-only file for callers without one.
 * @module
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseAck, parseEnvelope, type SignedAck, type SignedMessage } from './messaging-envelope.js';
import { writeFileAtomicAsync } from './messaging-fs.js';

/** One message as stored: the signed envelope, which way it went, and (for sent ones) the peer's ack. */
export interface StoredMessage extends SignedMessage {
  direction: 'in' | 'out';
  /** When it was received (in) or acknowledged (out), ms. */
  at: number;
  /** The recipient's signed ack (sent messages only). */
  ack?: SignedAck;
}

/**
 * Persistence the messenger needs. `list()` must return every record appended before (also across
 * restarts): received ids are de-duplicated from it, so a restart never delivers a message twice.
 */
export interface MessageStore {
  /** Resolves once the record is durable (it survives a crash right after). */
  append(record: StoredMessage): Promise<void>;
  list(): Promise<StoredMessage[]>;
  /** Waits for background work (e.g. a journal's copies into the backing store). Called by `Messenger.stop()`. */
  flush?(): Promise<void>;
}

/** Identity of a record: direction, sender and message id. */
export function storedMessageKey(r: StoredMessage): string {
  return `${r.direction}/${r.message.from}/${r.message.id}`;
}

/** Parses a stored record's shape (signatures are checked by the reader). Null when malformed. */
export function parseStoredMessage(x: unknown): StoredMessage | null {
  try {
    const r = x as Record<string, unknown>;
    if (r.direction !== 'in' && r.direction !== 'out') return null;
    if (typeof r.at !== 'number' || typeof r.sig !== 'string') return null;
    const message = parseEnvelope(r.message);
    const out: StoredMessage = { direction: r.direction, at: r.at, message, sig: r.sig };
    if (r.ack !== undefined) {
      const a = r.ack as Record<string, unknown>;
      if (typeof a.sig !== 'string') return null;
      out.ack = { ack: parseAck(a.ack), sig: a.sig };
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * An append-only JSON-lines file (one record per line, fsynced per append). Malformed lines, e.g. a torn
 * last line after a crash, are skipped.
 *
 * @example
 * const store = new JsonlMessageStore(join(configDir, 'messages.jsonl'));
 */
export class JsonlMessageStore implements MessageStore {
  constructor(readonly path: string) {}

  async append(record: StoredMessage): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    // A leading newline isolates this record from a torn line a crash may have left.
    const line = `\n${JSON.stringify(record)}\n`;
    const fh = await open(this.path, 'a', 0o600);
    try {
      await fh.appendFile(line);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Empties the file (atomically: a crash leaves the old content or none). */
  async clear(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomicAsync(this.path, '', 0o600);
  }

  async list(): Promise<StoredMessage[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: StoredMessage[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let x: unknown;
      try {
        x = JSON.parse(line);
      } catch {
        continue;
      }
      const rec = parseStoredMessage(x);
      if (rec) out.push(rec);
    }
    return out;
  }
}

/**
 * A write-ahead journal in front of a slower store (the git memory store takes ~15 ms per write here): `append`
 * is durable once the record is fsynced to the journal (about a millisecond), which is all an ack needs; the
 * copy into `backing` runs in the background. Records the backing store does not have yet (a crash, a failed
 * copy) are copied over by {@link recover}, which the first `list()` runs; the journal is emptied whenever
 * every record in it has reached the backing store.
 *
 * @example
 * const store = new JournaledMessageStore(messageStoreFromMemory(memory), join(configDir, 'messages.journal'));
 */
export class JournaledMessageStore implements MessageStore {
  private readonly journal: JsonlMessageStore;
  /** Journaled records not yet confirmed in the backing store, by key. */
  private readonly unbacked = new Map<string, StoredMessage>();
  private readonly copies = new Set<Promise<void>>();
  private chain: Promise<unknown> = Promise.resolve();
  private recovered: Promise<void> | undefined;

  constructor(
    readonly backing: MessageStore,
    journalPath: string,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    this.journal = new JsonlMessageStore(journalPath);
  }

  /** Journal operations run one at a time, so emptying it never races an append. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  async append(record: StoredMessage): Promise<void> {
    await this.recover();
    await this.serial(() => this.journal.append(record));
    this.unbacked.set(storedMessageKey(record), record);
    this.copy(record);
  }

  private copy(record: StoredMessage): void {
    const p = this.backing
      .append(record)
      .then(() => {
        this.unbacked.delete(storedMessageKey(record));
        if (this.unbacked.size === 0) return this.compact();
      })
      .catch((e) => this.onError(e)) // stays in the journal; the next recover() copies it again
      .finally(() => this.copies.delete(p));
    this.copies.add(p);
  }

  private compact(): Promise<void> {
    return this.serial(async () => {
      if (this.unbacked.size === 0) await this.journal.clear();
    });
  }

  /** Copies journaled records missing from the backing store into it (once; later calls wait for it). */
  recover(): Promise<void> {
    this.recovered ??= (async () => {
      const journaled = await this.journal.list();
      if (journaled.length === 0) return;
      const have = new Set((await this.backing.list()).map(storedMessageKey));
      for (const r of journaled) {
        if (!have.has(storedMessageKey(r))) {
          await this.backing.append(r);
          have.add(storedMessageKey(r));
        }
      }
      await this.serial(() => this.journal.clear());
    })();
    return this.recovered;
  }

  async list(): Promise<StoredMessage[]> {
    await this.recover();
    const backed = await this.backing.list();
    const have = new Set(backed.map(storedMessageKey));
    return [...backed, ...[...this.unbacked.values()].filter((r) => !have.has(storedMessageKey(r)))];
  }

  async flush(): Promise<void> {
    while (this.copies.size > 0) await Promise.allSettled([...this.copies]);
    await this.chain;
    await this.backing.flush?.();
  }
}
