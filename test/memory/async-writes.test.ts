// The git copies' file work (objects, packs, ref moves) runs off the event loop: the agent's sessions share
// that loop, and synchronous writes and fsyncs there held every connection for the length of a batch. What is
// checked: the loop keeps turning while a pack is written and a ref is moved, and what lands is still what
// real git accepts (`git fsck --strict`), with nothing left under a temporary name.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { initBareRepository } from '../../src/memory/_init-repo.js';
import { makeObject, ObjectDb, PACK_THRESHOLD } from '../../src/memory/odb.js';
import { FLUSH_BYTES, PackWriter } from '../../src/memory/pack-writer.js';
import { PUBLIC_REF, readRef, updateRef } from '../../src/memory/refs.js';
import type { MemoryStore } from '../../src/memory/store.js';
import { fsck, git, storeOpener, tempDir } from './_helpers.js';

const open = storeOpener('async-writes');

/** How many turns the event loop takes (setImmediate callbacks run) until `work` settles. */
async function turnsDuring<T>(work: () => Promise<T> | T): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { value: await work(), turns };
  } finally {
    running = false;
  }
}

/** Files under objects/ still carrying a temporary name. */
function leftovers(dir: string): string[] {
  return readdirSync(join(dir, 'objects'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    /(^|\/)tmp_/.test(f),
  );
}

describe('git copies off the event loop', () => {
  it('the loop turns while a pack is written, between its file operations', async () => {
    const t = tempDir('async-pack');
    try {
      await initBareRepository(t.dir);
      const objs = Array.from({ length: PACK_THRESHOLD }, (_, i) =>
        makeObject('blob', Buffer.from(`blob ${i}`)),
      );
      const { turns } = await turnsDuring(() => new ObjectDb(t.dir).writePack(objs));
      // Open, write, fsync, close, the index's four, two renames, the directory's fsync: each one a turn at
      // least. A synchronous writer gives none.
      expect(turns).toBeGreaterThanOrEqual(8);
      expect(fsck(t.dir).status).toBe(0);
      expect(leftovers(t.dir)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('the loop turns while a ref is moved, and the compare-and-swap still refuses a stale expectation', async () => {
    const store = await open('ref');
    await store.remember({ type: 'learning', content: 'first' });
    const head = readRef(store.dir, PUBLIC_REF) as string;
    await store.remember({ type: 'learning', content: 'second' });
    const second = readRef(store.dir, PUBLIC_REF) as string;
    expect(await updateRef(store.dir, PUBLIC_REF, head, head)).toBe(false); // it moved on
    const { value, turns } = await turnsDuring(() => updateRef(store.dir, PUBLIC_REF, head, second));
    expect(value).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(4); // owner file (open, write, fsync, close), link, rename, dir fsync
    expect(readRef(store.dir, PUBLIC_REF)).toBe(head);
    expect(fsck(store.dir).status).toBe(0);
  });

  it('a pack larger than one write reads back, passes git verify-pack and fsck --strict', async () => {
    const t = tempDir('async-big');
    try {
      await initBareRepository(t.dir);
      // Incompressible blobs, so the pack spans several writes of FLUSH_BYTES.
      const objs = Array.from({ length: 5 }, () => makeObject('blob', randomBytes(FLUSH_BYTES)));
      await new ObjectDb(t.dir).writePack(objs);
      const db = new ObjectDb(t.dir);
      for (const o of objs) expect(Buffer.from(db.readTyped(o.oid, 'blob')).equals(o.content)).toBe(true);
      const pack = readdirSync(join(t.dir, 'objects/pack')).find((f) => f.endsWith('.pack')) as string;
      git(t.dir, 'verify-pack', join('objects/pack', pack));
      expect(fsck(t.dir).status).toBe(0);
      expect(leftovers(t.dir)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('an aborted pack leaves no file, even with writes still in flight', async () => {
    const t = tempDir('async-abort');
    try {
      await initBareRepository(t.dir);
      const w = new PackWriter(join(t.dir, 'objects/pack'), 3);
      w.add(makeObject('blob', randomBytes(FLUSH_BYTES)));
      w.add(makeObject('blob', randomBytes(FLUSH_BYTES)));
      await w.abort();
      await w.abort();
      expect(readdirSync(join(t.dir, 'objects/pack'))).toEqual([]);
      await expect(w.finish()).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    } finally {
      t.cleanup();
    }
  });

  it('a store of many batches, packed and loose, is what git fsck --strict accepts', async () => {
    const store: MemoryStore = await open('batches', AgentKey.random());
    // One batch of PACK_THRESHOLD entries or more goes into a pack; single entries are loose objects.
    await Promise.all(
      Array.from({ length: PACK_THRESHOLD + 10 }, (_, i) =>
        store.remember({ type: 'learning', content: `p${i}` }),
      ),
    );
    for (let i = 0; i < 5; i++) await store.remember({ type: 'learning', content: `l${i}` });
    await store.remember({ type: 'reflection', content: 'private', visibility: 'private' });
    expect(readdirSync(join(store.dir, 'objects/pack')).some((f) => f.endsWith('.idx'))).toBe(true);
    expect((await store.recall()).length).toBe(PACK_THRESHOLD + 16);
    const check = fsck(store.dir);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
    expect(leftovers(store.dir)).toEqual([]);
  });
});
