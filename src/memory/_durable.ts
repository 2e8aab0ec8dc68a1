import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

/**
 * The memory layer's file-durability primitives: write a whole buffer to a new file (optionally fsynced), and
 * fsync a directory so a rename in it survives power loss. Every object, pack and ref file appears by rename
 * of a temporary file written with these.
 * @module
 */

/** Writes all of `data` at the fd's position. */
export function writeAll(fd: number, data: Uint8Array): void {
  let at = 0;
  while (at < data.length) at += writeSync(fd, data, at, data.length - at);
}

/** Creates `path` (it must not exist; read-only mode 0444 like git's objects) holding `data`. */
export function writeNewFile(path: string, data: Uint8Array, sync: boolean): void {
  const fd = openSync(path, 'wx', 0o444);
  try {
    writeAll(fd, data);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a directory so a rename in it survives power loss (best effort: not every fs allows it). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Directories cannot be fsynced on some platforms; the rename is still atomic.
  }
}
