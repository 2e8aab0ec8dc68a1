import { open } from 'node:fs/promises';

/**
 * The memory layer's file-durability primitives: write a whole buffer to a new file (optionally fsynced), and
 * fsync a directory so a rename in it survives power loss. Every object, pack and ref file appears by rename
 * of a temporary file written with these. They are asynchronous: git copies run on the event loop that also
 * serves the agent's sessions, and a synchronous fsync there stalled every connection for its duration (a
 * batch of copies blocked the loop for 60–100 ms, docs/protocol.md §5.7.2).
 * @module
 */

/** Minimal file handle these helpers write through (a `FileHandle` of node:fs/promises). */
interface Writable {
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
}

/** Writes all of `data` at `position` (a short write is continued, never silently dropped). */
export async function writeAllAt(fh: Writable, data: Uint8Array, position: number): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at, position + at);
    at += bytesWritten;
  }
}

/** Creates `path` (it must not exist; by default read-only mode 0444 like git's objects) holding `data`. */
export async function writeNewFile(
  path: string,
  data: Uint8Array,
  sync: boolean,
  mode = 0o444,
): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await writeAllAt(fh, data, 0);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a directory so a rename in it survives power loss (best effort: not every fs allows it). */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Directories cannot be fsynced on some platforms; the rename is still atomic.
  }
}
