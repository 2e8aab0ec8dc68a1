import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { MmogitError } from '../errors.js';
import { fsyncDir } from './odb.js';

/**
 * Branch refs with git's own lock discipline (Documentation/technical/api-lockfile / refs/files-backend.c): the
 * new value is written to `<ref>.lock` created exclusively, fsynced, and renamed over the ref. The rename is the
 * commit point: a crash before it leaves the old ref, after it the new one. Objects are always written before.
 * @module
 */

/** The branch sync shares with peers. */
export const PUBLIC_REF = 'refs/heads/main';
/** The branch that holds private entries; it never leaves this machine. */
export const PRIVATE_REF = 'refs/heads/private';

/** A `.lock` older than this is taken to be left by a crashed writer and removed. */
export const STALE_LOCK_MS = 30_000;

const OID_RE = /^[0-9a-f]{40}$/;

/** The commit a ref points at (loose ref first, then `packed-refs`), or null if the branch has no commit yet. */
export function readRef(gitdir: string, ref: string): string | null {
  try {
    const v = readFileSync(join(gitdir, ref), 'utf8').trim();
    if (OID_RE.test(v)) return v;
    throw new MmogitError('ERR_INVALID_MEMORY', `${ref} does not hold an object id`, { details: { ref } });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    for (const line of readFileSync(join(gitdir, 'packed-refs'), 'utf8').split('\n')) {
      const [oid, name] = line.split(' ');
      if (name === ref && oid && OID_RE.test(oid)) return oid;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return null;
}

/**
 * Compare-and-swap of a ref: succeeds only if it still points at `expected` (null = absent). Returns false when
 * another writer moved it first or holds the lock (the caller rebuilds on the new value and retries).
 */
export function updateRef(gitdir: string, ref: string, next: string, expected: string | null): boolean {
  if (!OID_RE.test(next)) throw new MmogitError('ERR_INTERNAL', `not an object id: ${next}`);
  const path = join(gitdir, ref);
  const lock = `${path}.lock`;
  let fd: number;
  try {
    fd = openSync(lock, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const age = Date.now() - (statSafe(lock)?.mtimeMs ?? Date.now());
    if (age > STALE_LOCK_MS) rmSync(lock, { force: true });
    return false;
  }
  let renamed = false;
  try {
    if (readRef(gitdir, ref) !== expected) return false;
    const data = Buffer.from(`${next}\n`);
    writeSync(fd, data, 0, data.length);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(lock, path);
    renamed = true;
    fsyncDir(dirname(path));
    return true;
  } finally {
    if (fd >= 0) closeSync(fd);
    if (!renamed) rmSync(lock, { force: true });
  }
}

function statSafe(path: string): { mtimeMs: number } | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}
