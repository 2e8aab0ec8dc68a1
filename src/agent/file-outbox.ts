/**
 * The sender's file outbox: one file per file transfer not yet acknowledged, `<config-dir>/outbox-files/<id>.json`
 * (beside the message outbox, mode 0600, written atomically like it). It holds the signed offer — so every
 * resumption, after a drop or a restart, offers the very same id, name, size and sha256 — the path the file is
 * read from, and the size and mtime it had when it was hashed, so a changed file is noticed before any byte of
 * it is sent again. An entry is `pending` (the daemon retries it) or `failed` (a final error: kept, visible in
 * `mmogit outbox list`, until dropped or retried by hand). docs/protocol.md §9.4.
 * @module
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isStaleDurableTemp, syncDir, writeFileDurable } from '../_fs.js';
import { MmogitError } from '../errors.js';
import { diskFullError } from './_errors.js';
import { parseFileOffer, type SignedFileOffer, verifyFileOffer } from './files-wire.js';
import { MESSAGE_ID_RE, parseEnvelopeV2 } from './messaging-envelope-v2.js';
import { idOfFile } from './outbox.js';

/** The directory of the file outbox inside the config dir. */
export const FILE_OUTBOX_DIR = 'outbox-files';
const FORMAT = 'mmogit-file-outbox';
const VERSION = 1;
/** One file transfer waiting for the receiver's `stored` ack. */
export interface FileOutboxEntry {
  offer: SignedFileOffer;
  /** The absolute path the file is read from. */
  path: string;
  /** Size and mtime (ms) of the file when it was last hashed: a difference means hashing it again. */
  mtimeMs: number;
  queuedAt: number;
  state: 'pending' | 'failed';
  /** Why it failed (state `failed`). */
  error?: { code: string; message: string };
}

/** What {@link FileOutbox.list} found: valid entries oldest first, and files set aside as corrupt. */
export interface FileOutboxListing {
  entries: FileOutboxEntry[];
  corrupt: string[];
}

/** A directory of pending and failed file transfers. */
export class FileOutbox {
  readonly dir: string;

  constructor(configDir: string) {
    this.dir = join(configDir, FILE_OUTBOX_DIR);
  }

  private path(id: string): string {
    if (!MESSAGE_ID_RE.test(id)) throw new MmogitError('ERR_INVALID_ARGUMENT', `bad file offer id ${id}`);
    return join(this.dir, `${id}.json`);
  }

  /** Creates the directory (0700) and makes its name durable. */
  async init(): Promise<void> {
    const made = await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (made !== undefined) await syncDir(dirname(this.dir));
  }

  /** Writes `entry` durably (content and name): once this resolves, a restart finds it. */
  async put(entry: FileOutboxEntry): Promise<void> {
    const body = `${JSON.stringify({ format: FORMAT, v: VERSION, ...entry })}\n`;
    await this.init();
    await writeFileDurable(this.path(entry.offer.message.id), body, { mode: 0o600 }).catch((e: unknown) => {
      throw diskFullError(e, 'queueing a file');
    });
  }

  /** Removes the entry of `id`; false if there was none. */
  async remove(id: string): Promise<boolean> {
    try {
      await rm(this.path(id));
      await syncDir(this.dir);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Every entry, oldest first; corrupt files are renamed `<name>.corrupt`, a dead writer's temp files removed. */
  async list(): Promise<FileOutboxListing> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], corrupt: [] };
      throw e;
    }
    const entries: FileOutboxEntry[] = [];
    const corrupt: string[] = [];
    for (const name of names) {
      // A write cut by a kill: nothing was promised for it (send answers only after the rename).
      if (isStaleDurableTemp(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const id = idOfFile(name);
      if (id === undefined) continue;
      const path = join(this.dir, name);
      const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      if (text === null) continue;
      const entry = parseEntry(text);
      if (entry && entry.offer.message.id === id) entries.push(entry);
      else {
        await rename(path, `${path}.corrupt`).catch(() => {});
        corrupt.push(name);
      }
    }
    entries.sort((a, b) => a.queuedAt - b.queuedAt || (a.offer.message.id < b.offer.message.id ? -1 : 1));
    return { entries, corrupt };
  }
}

function parseEntry(text: string): FileOutboxEntry | null {
  try {
    const x = JSON.parse(text) as Record<string, unknown>;
    if (x.format !== FORMAT || x.v !== VERSION) return null;
    const o = x.offer as { message?: unknown; sig?: unknown } | undefined;
    if (typeof o?.sig !== 'string') return null;
    const offer = parseFileOffer(parseEnvelopeV2(o.message), o.sig);
    if (!verifyFileOffer(offer)) return null;
    if (typeof x.path !== 'string' || typeof x.mtimeMs !== 'number' || typeof x.queuedAt !== 'number')
      return null;
    if (x.state !== 'pending' && x.state !== 'failed') return null;
    const err = x.error as { code?: unknown; message?: unknown } | undefined;
    const error =
      typeof err?.code === 'string' && typeof err.message === 'string'
        ? { error: { code: err.code, message: err.message } }
        : {};
    return { offer, path: x.path, mtimeMs: x.mtimeMs, queuedAt: x.queuedAt, state: x.state, ...error };
  } catch {
    return null;
  }
}
