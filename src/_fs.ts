/**
 * Durable file writes shared by every layer that keeps state on disk (identity, daemon state, the outbox,
 * network descriptions). POSIX makes a write crash-safe only in steps: write a temp file, fsync it, rename it
 * over the target (atomic), then fsync the directory so the new name itself survives a power loss (see the
 * `rename(2)` and `fsync(2)` man pages). The steps run on libuv's thread pool, so a busy daemon does not stall
 * on a disk flush.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Fsyncs a directory, so a file created or renamed in it survives a crash. Best effort where directories cannot
 * be opened or synced (Windows, some network file systems): the rename is still atomic there.
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

export interface DurableWriteOptions {
  /** Mode of the new file (default 0600: most of what we write is private). */
  mode?: number;
  /**
   * Fsync the directory after the rename (default true). Pass false only when the caller syncs the directory
   * itself once for many files (the outbox does).
   */
  syncDir?: boolean;
  /**
   * Checked between the steps: once it returns true before the rename, the temp file is removed and nothing is
   * written (the result is then false). After the rename the write completes regardless.
   */
  cancelled?: () => boolean;
}

/**
 * Writes `data` to `path` durably and atomically: an exclusive temp file beside it with `mode`, fsynced, renamed
 * over `path`, then the directory fsynced. A crash leaves the old file or the new one, never a mix, and no
 * temp file once this resolves or rejects. Resolves true when `path` holds `data`; false when `cancelled` said
 * so first.
 *
 * @example
 * await writeFileDurable(join(dir, 'daemon.json'), JSON.stringify(state), { mode: 0o600 });
 */
export async function writeFileDurable(
  path: string,
  data: string | Uint8Array,
  options: DurableWriteOptions = {},
): Promise<boolean> {
  const cancelled = options.cancelled ?? (() => false);
  if (cancelled()) return false;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', options.mode ?? 0o600);
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

/** A temp file of {@link writeFileDurable}: `<name>.tmp-<pid>-<hex>`, the writer's pid in group 1. */
const DURABLE_TEMP_RE = /\.tmp-(\d+)-[0-9a-f]+$/;

/**
 * Whether process `pid` is gone: kill(pid, 0) fails with ESRCH, or (Linux) the pid is a zombie, dead but not
 * yet reaped by its parent. A SIGKILLed daemon was orphaned at birth (it is spawned detached), so its zombie
 * waits for the init process to reap it, and some inits take their time: 1.5–1.7 s measured on this project's
 * CI machines, during which a daemon restarted on the same config dir saw its predecessor's temp files as a
 * live writer's and kept them. A process of another user counts as alive.
 */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  return isZombie(pid);
}

/**
 * Whether `/proc/<pid>/stat` gives the state Z (zombie) or X (dead), proc(5). The state is the first field
 * after the command name in parentheses, which may itself hold spaces or ')' and so is skipped to its last ')'.
 * False where there is no /proc (other systems): such a pid then counts as alive, as before.
 */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

/**
 * Whether `name` is a temp file of {@link writeFileDurable} whose writer is gone (killed mid-write): nothing
 * else will ever rename or remove it, so its directory's owner may. A temp file of this process or of a live
 * one is a write in progress and is left alone.
 */
export function isStaleDurableTemp(name: string): boolean {
  const m = DURABLE_TEMP_RE.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && processGone(pid);
}
