import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { entryPath } from '../../src/memory/entry.js';
import { makeObject, type StoredObject } from '../../src/memory/odb.js';
import { propertyParams } from '../helpers/property.js';
import { storeOpener } from './_helpers.js';

/**
 * Tree union, the merge of sync, is a set union of entry files: commutative, associative, idempotent, with
 * the empty tree as identity, and it gives the same tree (same id) as building the union from scratch.
 */

const open = storeOpener('trees');

/** A set of entry files: content-addressed like real entries (name = SHA-256 of the bytes). */
const fileSet = fc.uniqueArray(fc.uint8Array({ minLength: 1, maxLength: 24 }), {
  maxLength: 24,
  selector: (b) => Buffer.from(b).toString('hex'),
});

describe('tree union', () => {
  it('is commutative, associative and idempotent, and equals building the union', async () => {
    const store = await open('t', AgentKey.random());
    const port = store.syncPort();
    const build = async (files: Uint8Array[]) => {
      const out: StoredObject[] = [];
      const blobs = files.map((b) => makeObject('blob', b));
      const tree = store.buildTree(
        null,
        files.map((b, i) => ({
          path: entryPath(createHash('sha256').update(b).digest('hex')),
          oid: (blobs[i] as StoredObject).oid,
        })),
        out,
      );
      await store.odb.write([...blobs, ...out]);
      return tree;
    };
    const union = async (a: string, b: string) => {
      const out: StoredObject[] = [];
      const t = await port.unionTrees(a, b, out);
      await store.odb.write(out);
      return t;
    };
    /** The entry file names under a root tree, walked with the store's own tree reader. */
    const leafIds = (root: string): string[] => {
      const names: string[] = [];
      const walk = (t: string, depth: number) => {
        for (const e of store.readTree(t)) {
          if (depth < 4) walk(e.oid, depth + 1);
          else names.push(e.name);
        }
      };
      walk(root, 0);
      return names.sort();
    };
    const empty = await build([]);
    await fc.assert(
      fc.asyncProperty(fileSet, fileSet, fileSet, async (fa, fb, fc3) => {
        const a = await build(fa);
        const b = await build(fb);
        const c = await build(fc3);
        const ab = await union(a, b);
        expect(await union(b, a)).toBe(ab);
        expect(await union(await union(a, b), c)).toBe(await union(a, await union(b, c)));
        expect(await union(a, a)).toBe(a);
        expect(await union(a, empty)).toBe(a);
        expect(await union(empty, a)).toBe(a);
        const both = [...new Map([...fa, ...fb].map((x) => [Buffer.from(x).toString('hex'), x])).values()];
        expect(ab).toBe(await build(both));
        expect(leafIds(ab)).toEqual([...new Set([...leafIds(a), ...leafIds(b)])].sort());
      }),
      propertyParams('tree union laws', { numRuns: 200 }),
    );
  }, 120_000);
});
