import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MmogitError } from '../errors.js';
import { fsyncDir, writeNewFile } from './_durable.js';

/**
 * Branch refs with git's own lock discipline (Documentation/technical/api-lockfile / refs/files-backend.c): the
 * new value is written to `<ref>.lock` created exclusively, fsynced, and renamed over the ref. The rename is the
 * commit point: a crash before it leaves the old ref, after it the new one. Objects are always written before.
 *
 * Reading a ref is synchronous (a small read, served from the page cache); moving one is asynchronous, because
 * its fsyncs would otherwise stall the event loop that also serves the agent's sessions.
 * @module
 */

/** The branch sync shares with peers. */
export const PUBLIC_REF = 'refs/heads/main';
/** The branch that holds private entries; it never leaves this machine. */
export const PRIVATE_REF = 'refs/heads/private';

/** A `.lock` with no owner of ours (git's own) older than this is taken to be left by a crashed writer. */
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
 *
 * The lock is born as a file under `mmogit-locks/` named for the writing process (`<pid>-<random>`) and then
 * hard-linked to `<ref>.lock`: `link(2)` fails with EEXIST like an exclusive create, so git's own writers and
 * ours still exclude each other, and the second name tells a later writer whose lock it is. A lock whose
 * process is gone (kill -9 between the link and the rename) is removed at once instead of blocking every
 * writer until it is old; a lock with no owner name (written by git itself) falls back to its age.
 */
export async function updateRef(
  gitdir: string,
  ref: string,
  next: string,
  expected: string | null,
): Promise<boolean> {
  if (!OID_RE.test(next)) throw new MmogitError('ERR_INTERNAL', `not an object id: ${next}`);
  const path = join(gitdir, ref);
  const lock = `${path}.lock`;
  const owner = await writeOwner(gitdir, Buffer.from(`${next}\n`));
  let locked = false;
  let renamed = false;
  try {
    try {
      await link(owner, lock);
      locked = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      await removeIfAbandoned(gitdir, lock);
      return false;
    }
    if (readRef(gitdir, ref) !== expected) return false;
    await rename(lock, path);
    renamed = true;
    await fsyncDir(dirname(path));
    return true;
  } finally {
    if (locked && !renamed) await rm(lock, { force: true });
    await rm(owner, { force: true });
  }
}

/** Directory (inside the git dir, which git ignores) where lock files are born under their owner's name. */
export const LOCK_OWNERS_DIR = 'mmogit-locks';

async function writeOwner(gitdir: string, data: Buffer): Promise<string> {
  const dir = join(gitdir, LOCK_OWNERS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const owner = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  // 0644 like the refs git writes: this file becomes the ref by rename.
  await writeNewFile(owner, data, true, 0o644);
  return owner;
}

/** Removes `lock` if the process that took it is gone, or if it has no owner and is older than STALE_LOCK_MS. */
async function removeIfAbandoned(gitdir: string, lock: string): Promise<void> {
  const st = await statSafe(lock);
  if (!st) return;
  const pid = st.nlink > 1 ? await ownerPid(gitdir, st.ino) : null;
  const abandoned = pid !== null ? !processAlive(pid) : Date.now() - st.mtimeMs > STALE_LOCK_MS;
  if (!abandoned) return;
  // Only the lock we judged: if another writer replaced it in between, its inode differs and it stays.
  if ((await statSafe(lock))?.ino === st.ino) await rm(lock, { force: true });
  if (pid !== null) await removeDeadOwners(gitdir);
}

async function ownerPid(gitdir: string, ino: number): Promise<number | null> {
  const dir = join(gitdir, LOCK_OWNERS_DIR);
  for (const name of await readdirSafe(dir)) {
    if ((await statSafe(join(dir, name)))?.ino === ino) return parseOwnerPid(name);
  }
  return null;
}

/** Owner files of dead processes (a writer killed before it unlinked its own). */
async function removeDeadOwners(gitdir: string): Promise<void> {
  const dir = join(gitdir, LOCK_OWNERS_DIR);
  for (const name of await readdirSafe(dir)) {
    const pid = parseOwnerPid(name);
    if (pid !== null && !processAlive(pid)) await rm(join(dir, name), { force: true });
  }
}

function parseOwnerPid(name: string): number | null {
  const m = /^(\d{1,10})-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Signal 0 checks existence without delivering anything; EPERM means alive but owned by another user. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function statSafe(path: string): Promise<{ mtimeMs: number; ino: number; nlink: number } | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}
