/**
 * The receiver's side on disk: `<config-dir>/files/` (mode 0700) holds each complete file under
 * `<sender onion>/<id>-<sanitised name>` (mode 0600); a transfer in progress lives in `files/.partial/` as
 * `<sender>-<id>.part` (the bytes so far) and `<sender>-<id>.json` (the signed offer and the durable offset),
 * so a half-received file never has a complete file's name, and a dropped transfer resumes where it stopped.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { chmod, type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isStaleDurableTemp, syncDir, writeFileDurable } from '../_fs.js';
import { MmogitError } from '../errors.js';
import { diskFullError } from './_errors.js';
import { type SignedFileOffer, storedFileName } from './files-wire.js';

/** The directory of received files inside the config dir. */
export const FILES_DIR = 'files';
/**
 * A partial transfer untouched for this long (no byte, no checkpoint) is removed: its sender gave up or lost
 * the offer, and nothing else would ever free its space. Configurable (`filePartialMaxAgeMs` in config.json).
 */
export const DEFAULT_PARTIAL_MAX_AGE_MS = 7 * 24 * 3_600_000;
/** Transfers in progress at once per sender (each may hold up to the size cap on disk). */
export const MAX_PARTIALS_PER_PEER = 8;
const PARTIAL_DIR = '.partial';
const HASH_READ_BYTES = 1024 * 1024;

function senderDir(onion: string): string {
  return onion.replace(/\.onion$/, '');
}

/** What the `.json` beside a partial file records: the offer it belongs to and how much of it is durable. */
interface PartialState {
  id: string;
  sig: string;
  size: number;
  sha256: string;
  offset: number;
}

/** One transfer being received: append chunks, checkpoint, then finish (verify and rename) or discard. */
export class PartialFile {
  #offset: number;
  readonly #hash: Hash;
  readonly #fh: FileHandle;
  #closed = false;

  constructor(
    private readonly paths: { part: string; state: string; final: string; dir: string },
    private readonly offer: SignedFileOffer,
    fh: FileHandle,
    hash: Hash,
    offset: number,
  ) {
    this.#fh = fh;
    this.#hash = hash;
    this.#offset = offset;
  }

  /** Bytes received so far (the next chunk's offset). */
  get offset(): number {
    return this.#offset;
  }

  /** Appends `chunk` at the current offset. The caller has checked it stays within the declared size. */
  async write(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.#fh
        .write(chunk, done, chunk.length - done, this.#offset + done)
        .catch((e: unknown) => {
          throw diskFullError(e, 'receiving a file');
        });
      done += bytesWritten;
    }
    this.#hash.update(chunk);
    this.#offset += chunk.length;
  }

  /** Makes everything written so far durable and records the offset: a resumption starts from here. */
  async checkpoint(): Promise<number> {
    const offset = this.#offset;
    // Finished or discarded: there is nothing left to resume (and no state may be written again).
    if (this.#closed) return offset;
    await this.#fh.sync();
    const state: PartialState = {
      id: this.offer.message.id,
      sig: this.offer.sig,
      size: this.offer.message.body.size,
      sha256: this.offer.message.body.sha256,
      offset,
    };
    await writeFileDurable(this.paths.state, JSON.stringify(state), { mode: 0o600 }).catch((e: unknown) => {
      throw diskFullError(e, 'receiving a file');
    });
    return offset;
  }

  /**
   * Checks the SHA-256 of the whole content against the offer's and moves the file to its final name (mode
   * 0600), then removes the partial state. A mismatch discards the partial file and throws
   * `ERR_FILE_HASH_MISMATCH`: it never gets a complete file's name.
   */
  async finish(): Promise<string> {
    const got = this.#hash.digest('hex');
    const want = this.offer.message.body.sha256;
    if (got !== want) {
      await this.discard();
      throw new MmogitError(
        'ERR_FILE_HASH_MISMATCH',
        `file ${this.offer.message.id}: sha256 ${got}, offered ${want}`,
        {
          details: { id: this.offer.message.id, sha256: got, expected: want },
        },
      );
    }
    await this.#fh.sync();
    await this.close();
    await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
    await chmod(this.paths.part, 0o600);
    await rename(this.paths.part, this.paths.final);
    await syncDir(this.paths.dir);
    await rm(this.paths.state, { force: true });
    return this.paths.final;
  }

  /** Removes the partial file and its state (a failed or hostile transfer). */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.paths.part, { force: true });
    await rm(this.paths.state, { force: true });
  }

  /** Closes the file, keeping it for a resumption. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close().catch(() => {});
  }
}

/** The received files of one agent (`<config-dir>/files/`). */
export class FileInbox {
  readonly dir: string;
  readonly #partials: string;

  constructor(configDir: string) {
    this.dir = join(configDir, FILES_DIR);
    this.#partials = join(this.dir, PARTIAL_DIR);
  }

  /** Creates the directories (0700). */
  async init(): Promise<void> {
    await mkdir(this.#partials, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    await chmod(this.#partials, 0o700);
    // A state write cut by a kill -9 leaves its temp file behind: nothing else would ever remove it.
    for (const name of await readdir(this.#partials))
      if (isStaleDurableTemp(name)) await rm(join(this.#partials, name), { force: true });
  }

  /**
   * Removes every partial transfer (its `.part` and its `.json`) whose newest file is older than `maxAgeMs`;
   * returns the names removed (`<sender>-<id>`). A transfer still running writes or checkpoints far more often.
   */
  async sweep(maxAgeMs: number, now = Date.now()): Promise<string[]> {
    const newest = new Map<string, number>();
    for (const name of await readdir(this.#partials)) {
      const m = /^(.+)\.(part|json)$/.exec(name);
      if (!m) continue;
      const st = await stat(join(this.#partials, name)).catch(() => null);
      if (!st) continue;
      const base = m[1] as string;
      newest.set(base, Math.max(newest.get(base) ?? 0, st.mtimeMs));
    }
    const removed: string[] = [];
    for (const [base, mtime] of newest) {
      if (now - mtime <= maxAgeMs) continue;
      await rm(join(this.#partials, `${base}.part`), { force: true });
      await rm(join(this.#partials, `${base}.json`), { force: true });
      removed.push(base);
    }
    return removed;
  }

  /** Where the complete file of `offer` is (or will be) stored. */
  finalPath(offer: { from: string; id: string; body: { name: string } }): string {
    return join(this.dir, senderDir(offer.from), storedFileName(offer));
  }

  /** True when the file of `offer` is already stored complete. */
  async has(offer: SignedFileOffer): Promise<boolean> {
    return (await stat(this.finalPath(offer.message)).catch(() => null))?.isFile() === true;
  }

  /**
   * Opens the partial file of `offer`: resumed from its recorded offset when a state of the same offer exists
   * (the bytes before it are hashed again, the rest cut off), else a new one from 0.
   *
   * @throws `ERR_RATE_LIMITED` when the sender already has {@link MAX_PARTIALS_PER_PEER} other transfers open.
   */
  async open(offer: SignedFileOffer): Promise<PartialFile> {
    const m = offer.message;
    const base = join(this.#partials, `${senderDir(m.from)}-${m.id}`);
    const paths = {
      part: `${base}.part`,
      state: `${base}.json`,
      final: this.finalPath(m),
      dir: join(this.dir, senderDir(m.from)),
    };
    const state = await readState(paths.state);
    const same =
      state !== null &&
      state.id === m.id &&
      state.sig === offer.sig &&
      state.size === m.body.size &&
      state.sha256 === m.body.sha256;
    if (!same) {
      const prefix = `${senderDir(m.from)}-`;
      const open = (await readdir(this.#partials)).filter((n) => n.startsWith(prefix) && n.endsWith('.json'));
      if (open.length >= MAX_PARTIALS_PER_PEER) {
        throw new MmogitError(
          'ERR_RATE_LIMITED',
          `${m.from} already has ${open.length} unfinished file transfers (limit ${MAX_PARTIALS_PER_PEER})`,
          { details: { limit: MAX_PARTIALS_PER_PEER } },
        );
      }
    }
    const fh = await open(paths.part, same ? 'r+' : 'w+', 0o600).catch(async (e: unknown) => {
      // A state without its data file: start over.
      if ((e as { code?: string }).code === 'ENOENT') return open(paths.part, 'w+', 0o600);
      throw e;
    });
    const hash = createHash('sha256');
    let offset = 0;
    if (same && state) {
      const have = (await fh.stat()).size;
      offset = Math.min(state.offset, have, m.body.size);
      offset = await rehash(fh, hash, offset);
    }
    await fh.truncate(offset);
    return new PartialFile(paths, offer, fh, hash, offset);
  }
}

/** Feeds the first `length` bytes of `fh` into `hash`; returns how many there were. */
async function rehash(fh: FileHandle, hash: Hash, length: number): Promise<number> {
  const buf = Buffer.allocUnsafe(HASH_READ_BYTES);
  let at = 0;
  while (at < length) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - at), at);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return at;
}

async function readState(path: string): Promise<PartialState | null> {
  try {
    const x = JSON.parse(await readFile(path, 'utf8')) as Partial<PartialState>;
    const ok =
      typeof x.id === 'string' &&
      typeof x.sig === 'string' &&
      typeof x.sha256 === 'string' &&
      Number.isSafeInteger(x.size) &&
      Number.isSafeInteger(x.offset) &&
      (x.offset as number) >= 0;
    return ok ? (x as PartialState) : null;
  } catch {
    return null;
  }
}
