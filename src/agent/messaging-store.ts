/**
 * Where the messenger keeps sent and received messages. {@link MessageStore} is the narrow port the
 * {@link Messenger} needs; the agent's git-backed memory store is adapted to it (see messaging-adapters.ts),
 * and {@link JsonlMessageStore} is a plain append-only file for callers without one.
 * @module
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseAck, parseEnvelope, type SignedAck, type SignedMessage } from './messaging-envelope.js';

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
  append(record: StoredMessage): Promise<void>;
  list(): Promise<StoredMessage[]>;
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
