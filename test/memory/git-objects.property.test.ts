import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Commit,
  compareTreeEntries,
  encodeCommit,
  encodeTree,
  MODE_FILE,
  MODE_TREE,
  type ObjectType,
  parseCommit,
  parseTree,
  type TreeEntry,
} from '../../src/memory/_git.js';
import { initBareRepository } from '../../src/memory/_init-repo.js';
import { makeObject, ObjectDb, type StoredObject } from '../../src/memory/odb.js';
import { PackUnpacker } from '../../src/memory/sync/unpack.js';
import { propertyParams } from '../helpers/property.js';
import { rawPack } from './_attacker.js';
import { tempDir } from './_helpers.js';

/**
 * Round trips of the git object models and of both pack formats: the git pack our store writes (read back by
 * our object database and accepted by real `git verify-pack`) and the sync stream (cut back into the same
 * objects by the receiver's unpacker).
 */

const oid = fc.stringMatching(/^[0-9a-f]{40}$/);

const commit: fc.Arbitrary<Commit> = fc.record({
  tree: oid,
  parents: fc.array(oid, { maxLength: 3 }),
  ident: fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9._-][A-Za-z0-9 ._-]{0,15}$/),
      fc.stringMatching(/^[a-z0-9.@-]{0,20}$/),
    )
    .map(([name, email]) => `${name} <${email}>`),
  time: fc.integer({ min: 0, max: 999_999_999_999 }),
  message: fc.string({ maxLength: 80 }),
});

const treeEntries: fc.Arbitrary<TreeEntry[]> = fc.uniqueArray(
  fc.record({
    mode: fc.constantFrom(MODE_FILE, MODE_TREE),
    name: fc.stringMatching(/^[A-Za-z0-9._-]{1,24}$/).filter((n) => n !== '.' && n !== '..'),
    oid,
  }),
  { maxLength: 20, selector: (e) => e.name },
);

const objects: fc.Arbitrary<StoredObject[]> = fc.uniqueArray(
  fc.oneof(
    fc.uint8Array({ maxLength: 3000 }).map((b) => makeObject('blob', b)),
    treeEntries.map((t) => makeObject('tree', encodeTree(t))),
    commit.map((c) => makeObject('commit', encodeCommit(c))),
  ),
  { minLength: 1, maxLength: 30, selector: (o) => o.oid },
);

describe('git object models', () => {
  it('commits and trees round-trip through encode and parse', () => {
    fc.assert(
      fc.property(commit, (c) => {
        expect(parseCommit(encodeCommit(c))).toEqual(c);
      }),
      propertyParams('commit encode/parse', { numRuns: 300 }),
    );
    fc.assert(
      fc.property(treeEntries, (t) => {
        const bytes = encodeTree(t);
        expect(parseTree(bytes)).toEqual([...t].sort(compareTreeEntries));
        expect(encodeTree(parseTree(bytes))).toEqual(bytes);
      }),
      propertyParams('tree encode/parse', { numRuns: 300 }),
    );
  });
});

describe('packs', () => {
  it('a written git pack reads back object for object, and real git verifies it', async () => {
    const t = tempDir('packs');
    try {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(objects, async (objs) => {
          const dir = join(t.dir, `r${run++}`);
          await initBareRepository(dir);
          await new ObjectDb(dir).writePack(objs);
          const db = new ObjectDb(dir);
          for (const o of objs) expect(db.read(o.oid)).toEqual({ type: o.type, content: o.content });
          const pack = readdirSync(join(dir, 'objects/pack')).find((f) => f.endsWith('.pack')) as string;
          const listed = execFileSync('git', ['-C', dir, 'verify-pack', '-v', join('objects/pack', pack)], {
            encoding: 'utf8',
          });
          for (const o of objs) expect(listed).toContain(`${o.oid} ${o.type}`);
        }),
        propertyParams('git pack write/read', { numRuns: 60 }),
      );
    } finally {
      t.cleanup();
    }
  }, 120_000);

  it('the sync pack stream cuts back into the objects that were sent, in order', async () => {
    await fc.assert(
      fc.asyncProperty(objects, fc.integer({ min: 1, max: 4096 }), async (objs, chunk) => {
        const raw = rawPack(objs);
        const got: { type: ObjectType; content: Uint8Array }[] = [];
        const u = new PackUnpacker({ objects: objs.length, rawBytes: raw.length }, (type, content) =>
          got.push({ type, content }),
        );
        const z = deflateRawSync(raw);
        for (let i = 0; i < z.length; i += chunk) await u.push(z.subarray(i, i + chunk));
        await u.end();
        expect(got).toEqual(objs.map((o) => ({ type: o.type, content: Uint8Array.from(o.content) })));
      }),
      propertyParams('sync pack stream write/read', { numRuns: 200 }),
    );
  });
});
