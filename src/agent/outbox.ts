/**
 * The persisted outbox: one file per undelivered message, `<dir>/<id>.json`, written atomically (temp file,
 * fsync, rename, directory fsync) alongside the first delivery attempt and removed once the recipient's signed
 * ack was verified. `Messenger.send()` reports a message `queued` only after its file is durable, so a crash or
 * restart finds every queued message here (and sends it again; the recipient de-duplicates by id). A write that
 * is no longer needed (the ack came first) is cancelled before its rename where possible
 * (docs/protocol.md §5.7).
 * @module
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isStaleDurableTemp, syncDir, writeFileDurable } from '../_fs.js';
import { MmogitError } from '../errors.js';
import {
  type AnySignedMessage,
  MESSAGE_ID_RE,
  parseAnyEnvelope,
  verifyAnyMessage,
} from './messaging-envelope-v2.js';

const OUTBOX_FORMAT = 'mmogit-outbox';
const OUTBOX_VERSION = 1;
/** One queued message as stored on disk. */
export interface OutboxItem extends AnySignedMessage {
  /** When the message was queued (ms). */
  queuedAt: number;
}

/** What {@link Outbox.list} found: valid items oldest first, and files it set aside as corrupt. */
export interface OutboxListing {
  items: OutboxItem[];
  /** Files renamed to `<name>.corrupt` (unparseable, wrong format, or a signature that does not verify). */
  corrupt: string[];
}

/** An outbox write in progress ({@link Outbox.begin}). */
export interface OutboxWrite {
  readonly item: OutboxItem;
  /**
   * Resolves true once the item's file is in place with its content synced (its name is durable after
   * {@link Outbox.sync}), false when {@link cancel} stopped the write before its file appeared; rejects when the
   * write failed (nothing is left behind then).
   */
  readonly done: Promise<boolean>;
  /** Asks the write to stop; it does unless its file is already being renamed into place. */
  cancel(): void;
}

/**
 * A directory of queued signed messages.
 *
 * @example
 * const outbox = new Outbox(join(configDir, 'outbox'));
 * await outbox.put(signMessage(key, peer, 'hi'));
 * (await outbox.list()).items.length // 1
 */
export class Outbox {
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  private path(id: string): string {
    if (!MESSAGE_ID_RE.test(id)) throw new MmogitError('ERR_INVALID_ARGUMENT', `bad message id ${id}`);
    return join(this.dir, `${id}.json`);
  }

  /** Creates the directory (mode 0700: messages are private) and makes its name durable. */
  async init(): Promise<void> {
    const made = await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (made !== undefined) await syncDir(dirname(this.dir));
  }

  /** {@link init} once per instance (and again if the directory disappeared). */
  private ensureDir(): Promise<void> {
    this.ready ??= this.init().catch((e) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /** Persists `signed` atomically (temp file, fsync, rename, directory fsync; mode 0600). Idempotent per id. */
  async put(signed: AnySignedMessage, queuedAt = Date.now()): Promise<OutboxItem> {
    const w = this.begin(signed, queuedAt);
    await w.done;
    await this.sync();
    return w.item;
  }

  /**
   * Makes the names of files written by {@link begin} durable (fsyncs the directory). One call covers every
   * write that finished before it.
   */
  sync(): Promise<void> {
    return syncDir(this.dir);
  }

  /**
   * Starts persisting `signed` like {@link put} and returns at once, so the first delivery attempt can run
   * while the disk works. {@link OutboxWrite.cancel} stops a write that is no longer needed. The file's content
   * is fsynced before `done` resolves, but its name is durable only after a {@link sync}: that directory sync
   * is left to whoever needs the item to survive a crash (a `queued` answer), so a delivered message never
   * pays for it.
   */
  begin(signed: AnySignedMessage, queuedAt = Date.now()): OutboxWrite {
    const item: OutboxItem = { message: signed.message, sig: signed.sig, queuedAt };
    const path = this.path(signed.message.id);
    let cancelled = false;
    const opts = { mode: 0o600, cancelled: () => cancelled, syncDir: false };
    const write = async (): Promise<boolean> => {
      const body = `${JSON.stringify({ format: OUTBOX_FORMAT, v: OUTBOX_VERSION, ...item })}\n`;
      await this.ensureDir();
      try {
        return await writeFileDurable(path, body, opts);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        // The directory was removed under us: make it again, once.
        this.ready = undefined;
        await this.ensureDir();
        return writeFileDurable(path, body, opts);
      }
    };
    return {
      item,
      done: write(),
      cancel: () => {
        cancelled = true;
      },
    };
  }

  /**
   * Makes sure `write` leaves nothing behind: cancels it, and removes its file if it got there first.
   * Never throws for a failed write (that left nothing).
   */
  async discard(write: OutboxWrite): Promise<void> {
    write.cancel();
    const written = await write.done.catch(() => false);
    if (written) await this.remove(write.item.message.id);
  }

  /** Removes the item for `id`; false if there was none. */
  async remove(id: string): Promise<boolean> {
    try {
      await rm(this.path(id));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** True while `id` is queued. */
  async has(id: string): Promise<boolean> {
    return (await this.read(id)) !== null;
  }

  /** The item for `id`, or null (also for a corrupt file, which is left in place). */
  async read(id: string): Promise<OutboxItem | null> {
    let text: string;
    try {
      text = await readFile(this.path(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return parseItem(text);
  }

  /**
   * Every queued item, oldest first (by message timestamp, then id). Corrupt files are set aside; temp files of
   * a crashed writer are removed.
   */
  async list(): Promise<OutboxListing> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { items: [], corrupt: [] };
      throw e;
    }
    const items: OutboxItem[] = [];
    const corrupt: string[] = [];
    for (const name of names) {
      // A temp file whose writer is gone is a write that never finished: nothing was promised for it (a message
      // is `queued` only after its rename), and left in place it would stay forever.
      if (isStaleDurableTemp(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const id = idOfFile(name);
      if (id === undefined) continue; // temp files of a write in progress, .corrupt files
      const path = join(this.dir, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile (delivered)
        throw e;
      }
      const item = parseItem(text);
      if (item && item.message.id === id) items.push(item);
      else {
        // Keep the bytes for inspection but stop retrying them.
        await rename(path, `${path}.corrupt`).catch(() => {});
        corrupt.push(name);
      }
    }
    items.sort((a, b) => a.message.timestamp - b.message.timestamp || (a.message.id < b.message.id ? -1 : 1));
    return { items, corrupt };
  }
}

/** The message id a file `<id>.json` of the outbox is named by; undefined for any other name. */
export function idOfFile(name: string): string | undefined {
  const id = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
  return MESSAGE_ID_RE.test(id) ? id : undefined;
}

function parseItem(text: string): OutboxItem | null {
  try {
    const x = JSON.parse(text) as Record<string, unknown>;
    if (x.format !== OUTBOX_FORMAT || x.v !== OUTBOX_VERSION) return null;
    if (typeof x.sig !== 'string' || typeof x.queuedAt !== 'number') return null;
    const message = parseAnyEnvelope(x.message);
    const item: OutboxItem = { message, sig: x.sig, queuedAt: x.queuedAt };
    return verifyAnyMessage(item) ? item : null;
  } catch {
    return null;
  }
}
