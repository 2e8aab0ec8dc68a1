import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { entryPath } from '../../src/memory/entry.js';
import { makeObject, PACK_CACHE_BYTES, type StoredObject } from '../../src/memory/odb.js';
import { TREE_CACHE_ENTRIES, Trees } from '../../src/memory/trees.js';
import { storeOpener } from './_helpers.js';

// Regression: a long-lived agent's heap grew with every message it stored (20 agents × 1,000 messages: RSS
// 225 → 672 MiB). The tree cache kept every superseded tree (five per new entry, up to 257 entries each) up
// to 200,000 trees, and every pack file once read stayed in memory. Both caches are now bounded by cost.
const open = storeOpener('caches');

describe('memory caches stay bounded as the store grows', () => {
  it('the tree cache, over 1,500 entries added one at a time (each rewriting its path)', async () => {
    const store = await open('t', AgentKey.random());
    const trees = new Trees(store.odb);
    let root: string | null = null;
    let peak = 0;
    for (let i = 0; i < 1_500; i++) {
      const bytes = Buffer.from(`entry ${i}`);
      const blob = makeObject('blob', bytes);
      const out: StoredObject[] = [];
      root = trees.build(
        root,
        [{ path: entryPath(createHash('sha256').update(bytes).digest('hex')), oid: blob.oid }],
        out,
      );
      await store.odb.write([blob, ...out]);
      peak = Math.max(peak, trees.cachedEntries);
    }
    // without the bound the superseded trees alone hold far more than the budget by now
    expect(peak).toBeLessThanOrEqual(TREE_CACHE_ENTRIES + 257);
    // evicted trees are read back from git: every entry is still there
    expect(trees.leaves(root as string)).toHaveLength(1_500);
  }, 120_000);

  it('pack data, over packs larger in all than the budget', async () => {
    const store = await open('p', AgentKey.random());
    const blobs: StoredObject[] = [];
    const packs = Math.ceil((PACK_CACHE_BYTES * 1.5) / 2 ** 20);
    for (let i = 0; i < packs; i++) {
      const blob = makeObject('blob', randomBytes(2 ** 20)); // incompressible: each pack ~1 MiB
      blobs.push(blob);
      await store.odb.write([blob], { forcePack: true });
    }
    for (const b of blobs) {
      expect(Buffer.from(store.odb.readTyped(b.oid, 'blob')).equals(Buffer.from(b.content))).toBe(true);
      expect(store.odb.cachedPackBytes).toBeLessThanOrEqual(PACK_CACHE_BYTES + 2 ** 21);
    }
  }, 120_000);
});
