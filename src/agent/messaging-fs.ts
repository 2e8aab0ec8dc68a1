/**
 * Non-blocking atomic file writes for the outbox and the message journal. identity/store.ts's
 * `writeFileAtomic` uses synchronous fsync, which would stall every other session of a busy daemon for the
 * length of a disk flush; these do the same steps on the thread pool.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * Writes `data` to `path` atomically: an exclusive temp file with `mode`, fsynced, renamed over `path`. A crash
 * leaves the old file or the new one, never a mix.
 */
export async function writeFileAtomicAsync(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
