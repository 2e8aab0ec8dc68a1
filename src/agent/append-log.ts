/**
 * The message journal's file: an append-only log with group commit and O_DSYNC. (One-file durable writes, as
 * the outbox makes, are src/_fs.ts's `writeFileDurable`.)
 * @module
 */
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../_fs.js';

/** How {@link AppendLog} opens its file: `fs/promises`' `open` (tests wrap it to see and hold each write). */
export type OpenFile = (path: string, flags: number, mode: number) => Promise<FileHandle>;

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
    private readonly openFn: OpenFile = open,
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
      const fh = await this.openFn(this.path, flags, this.mode);
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
