/**
 * Where the messenger keeps sent and received messages. {@link MessageStore} is the narrow port the
 * {@link Messenger} needs; the agent's git-backed memory store is adapted to it (see messaging-adapters.ts),
 * and {@link JsonlMessageStore} is a plain append-only file for callers without one (and the journal that
 * messaging-journal.ts puts in front of a slower store).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { AppendLog, type OpenFile } from './append-log.js';
import { parseAck, type SignedAck } from './messaging-envelope.js';
import { type AnySignedMessage, parseAnyEnvelope } from './messaging-envelope-v2.js';
import { type KnownMessage, messageKey } from './messaging-index.js';

/** One message as stored: the signed envelope, which way it went, and (for sent ones) the peer's ack. */
export interface StoredMessage extends AnySignedMessage {
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
  /**
   * Resolves once the record is durable (it survives a crash right after). A store that can read one record by
   * an address resolves with it, a string ({@link KnownMessage.entry}, which {@link read} takes); any other value
   * means none.
   */
  append(record: StoredMessage): Promise<unknown>;
  list(): Promise<StoredMessage[]>;
  /**
   * What the messenger must know of every record {@link list} would return (its identity, thread and time),
   * without reading the records: a store that can answer from an index implements it, and the messenger's start
   * then costs O(index), not O(messages). Absent: derived from `list()`.
   */
  known?(): Promise<KnownMessage[]>;
  /**
   * The records `known` names, read alone instead of listing all: in the order given, those no longer found left
   * out. Null when the store cannot read some of them that way (an address it never gave); the caller then
   * lists. A store with both {@link known} and `read` promises both cost O(what they name or return), so a caller
   * may pick records from `known()` and read just those (the messenger's inbox does). Absent: the caller lists.
   */
  read?(known: readonly KnownMessage[]): Promise<StoredMessage[] | null>;
  /**
   * Every record as {@link KnownMessage} with its address, read from the records themselves (O(records)): what
   * rebuilds an index in front of this store.
   */
  listKnown?(): Promise<KnownMessage[]>;
  /** Waits for background work (e.g. a journal's copies into the backing store). Called by `Messenger.stop()`. */
  flush?(): Promise<void>;
  /**
   * Releases open files after {@link flush}; the store stays usable (a later append reopens them). Called by
   * `Messenger.stop()`.
   */
  close?(): Promise<void>;
}

export type { KnownMessage } from './messaging-index.js';

/** Identity of a record: direction, sender and message id. */
export function storedMessageKey(r: StoredMessage): string {
  return messageKey(r.direction, r.message.from, r.message.id);
}

/** A stored record as {@link KnownMessage}, with its address in the backing store when there is one. */
export function knownOf(r: StoredMessage, entry?: unknown): KnownMessage {
  const m = r.message;
  const k: KnownMessage = {
    direction: r.direction,
    from: m.from,
    id: m.id,
    thread: m.v === 2 ? m.thread : m.id,
    at: r.at,
  };
  if (typeof entry === 'string') k.entry = entry;
  return k;
}

/** Identity of a {@link KnownMessage}, as {@link storedMessageKey} of its record. */
export function knownKey(k: KnownMessage): string {
  return messageKey(k.direction, k.from, k.id);
}

/** What `store` knows: its {@link MessageStore.known} where it has one, else derived from its list. */
export async function knownMessages(store: MessageStore): Promise<KnownMessage[]> {
  return store.known ? store.known() : (await store.list()).map((r) => knownOf(r));
}

/** Parses a stored record's shape (signatures are checked by the reader). Null when malformed. */
export function parseStoredMessage(x: unknown): StoredMessage | null {
  try {
    const r = x as Record<string, unknown>;
    if (r.direction !== 'in' && r.direction !== 'out') return null;
    if (typeof r.at !== 'number' || typeof r.sig !== 'string') return null;
    const message = parseAnyEnvelope(r.message);
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
 * An append-only JSON-lines file (one record per line), kept open with O_DSYNC and group commit
 * ({@link AppendLog}): records appended together share one synchronous write. Malformed lines, e.g. a torn last
 * line after a crash, are skipped.
 *
 * @example
 * const store = new JsonlMessageStore(join(configDir, 'messages.jsonl'));
 */
export class JsonlMessageStore implements MessageStore {
  private readonly log: AppendLog;

  /** `options.open` replaces how the file is opened (tests hold its writes to see the group commit). */
  constructor(
    readonly path: string,
    options: { open?: OpenFile } = {},
  ) {
    this.log = new AppendLog(path, 0o600, options.open);
  }

  /** Resolves once the record is on stable storage. The write is issued before this returns when idle. */
  append(record: StoredMessage): Promise<void> {
    // A leading newline isolates this record from a torn line a crash may have left.
    return this.log.append(`\n${JSON.stringify(record)}\n`);
  }

  /** Empties the file durably, in order with appends (a crash leaves the old content or none). */
  clear(): Promise<void> {
    return this.log.truncate();
  }

  async close(): Promise<void> {
    await this.log.close();
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
