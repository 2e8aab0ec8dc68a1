// Ref locks left behind by a writer that was killed between taking `<ref>.lock` and renaming it over the ref
// (kill -9, OOM, power loss). Such a lock must not block every later writer; a lock held by a live writer, and
// git's own lock (which carries no owner), must still exclude.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { LOCK_OWNERS_DIR, PUBLIC_REF, readRef, updateRef } from '../../src/memory/refs.js';
import { MemoryStore } from '../../src/memory/store.js';
import { fsck, tempDir } from './_helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function storeWithOneEntry(): Promise<{ store: MemoryStore; dir: string; head: string }> {
  const t = tempDir('refs-lock');
  cleanups.push(t.cleanup);
  const dir = join(t.dir, 'memory');
  const store = await MemoryStore.open(dir, AgentKey.random());
  await store.remember({ type: 'learning', content: 'first' });
  return { store, dir, head: readRef(dir, PUBLIC_REF) as string };
}

/** A pid that is certainly not running: a child that has already exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

/** Leaves `<ref>.lock` as a writer with `pid` would have, had it died before its rename. */
function leaveLock(dir: string, pid: number, oid: string): string {
  const owners = join(dir, LOCK_OWNERS_DIR);
  fs.mkdirSync(owners, { recursive: true });
  const owner = join(owners, `${pid}-0123456789ab`);
  fs.writeFileSync(owner, `${oid}\n`);
  fs.linkSync(owner, join(dir, `${PUBLIC_REF}.lock`));
  return owner;
}

describe('ref locks', () => {
  it('a lock left by a dead writer is removed at once and the next write lands', async () => {
    const { store, dir, head } = await storeWithOneEntry();
    const owner = leaveLock(dir, deadPid(), head);
    await store.remember({ type: 'learning', content: 'after the crash' });
    expect(readRef(dir, PUBLIC_REF)).not.toBe(head);
    expect(fs.existsSync(join(dir, `${PUBLIC_REF}.lock`))).toBe(false);
    expect(fs.existsSync(owner)).toBe(false);
    expect((await store.recall()).map((e) => e.entry?.body.content).sort()).toEqual([
      'after the crash',
      'first',
    ]);
    expect(fsck(dir).status).toBe(0);
  });

  it('a lock held by a live writer excludes: the CAS fails and the lock stays', async () => {
    const { dir, head } = await storeWithOneEntry();
    leaveLock(dir, process.pid, head);
    expect(await updateRef(dir, PUBLIC_REF, 'f'.repeat(40), head)).toBe(false);
    expect(fs.existsSync(join(dir, `${PUBLIC_REF}.lock`))).toBe(true);
    expect(readRef(dir, PUBLIC_REF)).toBe(head);
  });

  it("git's own fresh lock (no owner name) excludes; once older than the stale age it is taken over", async () => {
    const { dir, head } = await storeWithOneEntry();
    const lock = join(dir, `${PUBLIC_REF}.lock`);
    fs.writeFileSync(lock, `${head}\n`);
    expect(await updateRef(dir, PUBLIC_REF, 'f'.repeat(40), head)).toBe(false);
    expect(fs.existsSync(lock)).toBe(true);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    expect(await updateRef(dir, PUBLIC_REF, 'f'.repeat(40), head)).toBe(false); // removes the stale lock
    expect(fs.existsSync(lock)).toBe(false);
    expect(await updateRef(dir, PUBLIC_REF, 'e'.repeat(40), head)).toBe(true);
    expect(readRef(dir, PUBLIC_REF)).toBe('e'.repeat(40));
  });

  it('leaves no owner file behind after successful and failed writes', async () => {
    const { dir, head } = await storeWithOneEntry();
    expect(await updateRef(dir, PUBLIC_REF, 'f'.repeat(40), 'a'.repeat(40))).toBe(false); // wrong expected value
    expect(await updateRef(dir, PUBLIC_REF, 'f'.repeat(40), head)).toBe(true);
    expect(fs.readdirSync(join(dir, LOCK_OWNERS_DIR))).toEqual([]);
  });
});
