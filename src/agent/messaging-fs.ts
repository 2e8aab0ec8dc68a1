/**
 * Non-blocking durable file writes for the outbox and the message journal. identity/store.ts's
 * `writeFileAtomic` uses synchronous fsync, which would stall every other session of a busy daemon for the
 * length of a disk flush; these do the same steps on the thread pool.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Fsyncs a directory, so a file created or renamed in it survives a crash (POSIX makes the new name durable only
 * once its directory is synced). Best effort where directories cannot be opened (Windows).
 */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch {
    // EINVAL/EPERM on file systems that cannot sync a directory: nothing more we can do.
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * Writes `data` to `path` atomically: an exclusive temp file with `mode`, fsynced, renamed over `path`, and (unless
 * `options.syncDir` is false) the directory fsynced so the new name is durable too. A crash leaves the old file
 * or the new one, never a mix.
 *
 * `options.cancelled` is checked between the steps: once it returns true before the rename, the temp file is
 * removed and nothing is written (the result is then false). After the rename the write completes regardless.
 * Resolves true when `path` holds `data` (durably, unless the directory sync was left to the caller).
 */
export async function writeFileAtomicAsync(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
  options: { cancelled?: () => boolean; syncDir?: boolean } = {},
): Promise<boolean> {
  const cancelled = options.cancelled ?? (() => false);
  if (cancelled()) return false;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', mode);
  let keep = false;
  try {
    if (!cancelled()) {
      await fh.writeFile(data);
      // The fsync is the expensive step: skip it when the write is no longer wanted.
      if (!cancelled()) {
        await fh.sync();
        keep = !cancelled();
      }
    }
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  if (!keep) {
    await unlink(tmp).catch(() => {});
    return false;
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  if (options.syncDir !== false) await syncDir(dirname(path));
  return true;
}

/** O_DSYNC where the platform has it (Linux, macOS): each write returns once its data is on stable storage. */
const O_DSYNC: number | undefined = (constants as { O_DSYNC?: number }).O_DSYNC;

/**
 * An append-only file kept open, with group commit: lines appended while a write is on the disk are written
 * together by the next write, so N records arriving together cost one synchronous write instead of N
 * open/append/fsync/close sequences. The file is opened with O_DSYNC (`fdatasync` after each write where that
 * flag is missing), so a write's promise resolves only once its bytes are durable.
 *
 * The first write on an idle log is issued synchronously from {@link append}, so a caller can overlap other
 * work (e.g. signing an ack) with the disk.
 */
export class AppendLog {
  private fh: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  private readonly queue: (
    | { kind: 'data'; data: string; resolve(): void; reject(e: unknown): void }
    | {
        kind: 'op';
        /** Null only for an op queued with `needsFile: false` while the file is closed. */
        fn(fh: FileHandle | null): Promise<void>;
        needsFile: boolean;
        resolve(): void;
        reject(e: unknown): void;
      }
  )[] = [];
  private busy = false;

  constructor(
    readonly path: string,
    private readonly mode = 0o600,
  ) {}

  /** Appends `data`; resolves once it is durable. Appends are written in call order. */
  append(data: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'data', data, resolve, reject });
      void this.pump();
    });
  }

  /**
   * Runs `fn` on the open file with no write in flight, after every append issued before and before any issued
   * later (e.g. a truncation).
   */
  exclusive(fn: (fh: FileHandle) => Promise<void>): Promise<void> {
    return this.enqueueOp(fn as (fh: FileHandle | null) => Promise<void>, true);
  }

  private enqueueOp(fn: (fh: FileHandle | null) => Promise<void>, needsFile: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'op', fn, needsFile, resolve, reject });
      void this.pump();
    });
  }

  /** Empties the file durably (in order with appends). */
  truncate(): Promise<void> {
    return this.exclusive(async (fh) => {
      await fh.truncate(0);
      await fh.datasync();
    });
  }

  /** Waits for queued writes, then closes the file. A later append reopens it. */
  close(): Promise<void> {
    return this.enqueueOp(async (fh) => {
      this.fh = undefined;
      await fh?.close();
    }, false);
  }

  private async openFile(): Promise<FileHandle> {
    this.opening ??= (async () => {
      const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (O_DSYNC ?? 0);
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      const fh = await open(this.path, flags, this.mode);
      // The file may be new: make its name durable before any record in it counts as durable.
      await syncDir(dirname(this.path));
      this.fh = fh;
      return fh;
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async pump(): Promise<void> {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const head = this.queue[0] as (typeof this.queue)[number];
    // Everything queued up to the next exclusive op goes in one write (group commit).
    let n = 0;
    if (head.kind === 'data') while (n < this.queue.length && this.queue[n]?.kind === 'data') n++;
    else n = 1;
    const batch = this.queue.splice(0, n);
    try {
      // No await when the file is open: the write is issued in the caller's tick.
      if (head.kind === 'op') {
        await head.fn(head.needsFile ? (this.fh ?? (await this.openFile())) : (this.fh ?? null));
      } else {
        const fh = this.fh ?? (await this.openFile());
        const bytes = Buffer.from(batch.map((b) => (b as { data: string }).data).join(''), 'utf8');
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
          off += bytesWritten;
        }
        if (O_DSYNC === undefined) await fh.datasync();
      }
      for (const b of batch) b.resolve();
    } catch (e) {
      for (const b of batch) b.reject(e);
    } finally {
      this.busy = false;
      void this.pump();
    }
  }
}
