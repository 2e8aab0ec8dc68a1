/**
 * The message index: one short line per stored message (direction, sender, id, thread, time), so a starting
 * messenger rebuilds its exactly-once seen set and its thread map without reading every stored message. Reading
 * them was O(messages ever stored): 12.6 s for 42,281 messages in the git store (docs/reliability.md, "Start time
 * grows with the inbox"), during which a restarted agent was unreachable.
 *
 * The file is JSON lines under a header line naming its format. Lines are appended with group commit and O_DSYNC
 * ({@link AppendLog}), each behind a newline so a torn line (a crash mid-write) stays isolated; a torn line is
 * skipped, which is safe because the journal keeps every record whose index line is not yet durable (see
 * {@link JournaledMessageStore}). A file that is missing or has no valid header is rebuilt from the store.
 * @module
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isStaleDurableTemp, writeFileDurable } from '../_fs.js';
import { AppendLog } from './append-log.js';

/** What the messenger needs to know of a stored message at start, without the message itself. */
export interface KnownMessage {
  direction: 'in' | 'out';
  from: string;
  id: string;
  /** Its thread (a version 1 message's is its own id). */
  thread: string;
  /** When it was received (in) or acknowledged (out), ms. */
  at: number;
  /**
   * Where the backing store keeps it, when the store said (the git store: the memory entry's id), so one record
   * can be read without listing all (`MessageStore.read`). Absent in lines written before it existed.
   */
  entry?: string;
}

/** Identity of a stored record: direction, sender and message id. */
export function messageKey(direction: 'in' | 'out', from: string, id: string): string {
  return `${direction}/${from}/${id}`;
}

/** The header line: a file without it is not an index (rebuilt, never trusted). */
export const MESSAGE_INDEX_HEADER = { format: 'mmogit-message-index', version: 1 } as const;

const HEADER_LINE = JSON.stringify(MESSAGE_INDEX_HEADER);

/**
 * One index line. Short member names, and no thread when it is the message's own id (a thread's first message,
 * every version 1 message): the index holds a line per message ever stored, ~220 bytes each with the entry id.
 */
interface IndexLine {
  d: 'in' | 'out';
  f: string;
  i: string;
  t?: string;
  a: number;
  e?: string;
}

/** A store address as the git store writes it (an entry id); anything else in a line is ignored. */
const ENTRY_RE = /^[0-9a-f]{64}$/;

function encodeLine(k: KnownMessage): string {
  const line: IndexLine = { d: k.direction, f: k.from, i: k.id, a: k.at };
  if (k.thread !== k.id) line.t = k.thread;
  if (k.entry !== undefined) line.e = k.entry;
  return JSON.stringify(line);
}

function decodeLine(text: string): KnownMessage | null {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof x !== 'object' || x === null) return null;
  const l = x as Partial<IndexLine>;
  if (l.d !== 'in' && l.d !== 'out') return null;
  if (typeof l.f !== 'string' || typeof l.i !== 'string') return null;
  if (l.t !== undefined && typeof l.t !== 'string') return null;
  if (typeof l.a !== 'number' || !Number.isFinite(l.a)) return null;
  // A malformed address is dropped, not the line: the record is still known, and is read by a full listing.
  const entry = typeof l.e === 'string' && ENTRY_RE.test(l.e) ? l.e : undefined;
  return { direction: l.d, from: l.f, id: l.i, thread: l.t ?? l.i, at: l.a, ...(entry ? { entry } : {}) };
}

/** What {@link MessageIndex.load} found. */
export interface LoadedIndex {
  records: KnownMessage[];
  /** Lines that did not parse (torn by a crash mid-write), skipped. */
  skipped: number;
}

/**
 * The index file at `path` (`<configDir>/messages.index` for agents, mode 0600).
 *
 * @example
 * const index = new MessageIndex(join(configDir, 'messages.index'));
 * const loaded = (await index.load()) ?? (await index.rewrite(fromStore), null);
 */
export class MessageIndex {
  private readonly log: AppendLog;

  constructor(readonly path: string) {
    this.log = new AppendLog(path, 0o600);
  }

  /** The indexed records in file order (duplicates kept out), or null when the file is missing or not an index. */
  async load(): Promise<LoadedIndex | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const lines = text.split('\n');
    let i = 0;
    while (i < lines.length && lines[i] === '') i++;
    if (lines[i] !== HEADER_LINE) return null;
    const records: KnownMessage[] = [];
    const have = new Set<string>();
    let skipped = 0;
    for (i++; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line === '') continue;
      const k = decodeLine(line);
      if (!k) {
        skipped++;
        continue;
      }
      const key = messageKey(k.direction, k.from, k.id);
      if (have.has(key)) continue;
      have.add(key);
      records.push(k);
    }
    return { records, skipped };
  }

  /** Appends `records` in one durable write (nothing for none). */
  append(records: readonly KnownMessage[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.log.append(records.map((k) => `\n${encodeLine(k)}\n`).join(''));
  }

  /** Replaces the whole file with the header and `records`, atomically and durably (a crash leaves one or the other). */
  async rewrite(records: readonly KnownMessage[]): Promise<void> {
    // The open append handle would keep writing to the replaced file.
    await this.log.close();
    await this.sweepTemps();
    const body = records.map((k) => `${encodeLine(k)}\n`).join('');
    await writeFileDurable(this.path, `${HEADER_LINE}\n${body}`, { mode: 0o600 });
  }

  async close(): Promise<void> {
    await this.log.close();
  }

  /** Removes temp files a crashed rewrite left (their writer is gone). */
  private async sweepTemps(): Promise<void> {
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.tmp-`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(prefix) && isStaleDurableTemp(name)) await unlink(join(dir, name)).catch(() => {});
    }
  }
}
