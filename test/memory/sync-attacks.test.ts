import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { canonicalJson } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { EMPTY_TREE_OID } from '../../src/memory/_git.js';
import { type EncodedEntry, entryId, signEntry } from '../../src/memory/entry.js';
import { makeObject, type StoredObject } from '../../src/memory/odb.js';
import { PUBLIC_REF, readRef } from '../../src/memory/refs.js';
import type { MemoryStore } from '../../src/memory/store.js';
import { propertyParams } from '../helpers/property.js';
import {
  type Attacker,
  againstVictim,
  commitObject,
  entryTreePath,
  F,
  history,
  rawPack,
  treeOf,
} from './_attacker.js';
import { fsck, mainEntryIds, storeOpener, syncPair } from './_helpers.js';

const open = storeOpener('attacks');

const memories = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ type: 'observation' as const, content: `${tag} ${i}` }));

/** The attacker's usual opening as the sending side: hello, a signed ref, and the victim's WANT. */
async function offer(a: Attacker, head: string): Promise<boolean> {
  await a.hello();
  await a.ref(head);
  const want = await a.read();
  return want.json.need === true;
}

/** Offers `objects` with `head`, then plays along with the victim's send phase (needs nothing). */
async function push(a: Attacker, head: string, objects: StoredObject[]): Promise<void> {
  if (await offer(a, head)) await a.pack(rawPack(objects), { objects: objects.length });
  const result = await a.read();
  if (result.type !== F.result) return;
  await a.refuseOffer();
  await a.send(F.result, { head: null });
}

/** Files of `entries` as tree paths. */
const files = (entries: readonly EncodedEntry[]) =>
  entries.map((e) => [entryTreePath(e.id), e.bytes] as [string[], Uint8Array]);

describe('sync never removes an entry the local tree holds', () => {
  it('an empty tree on top of our head merges back to our entries, and the loss does not spread', async () => {
    const victim = await open('victim');
    const honest = await open('honest');
    await victim.rememberMany(memories('mine', 3));
    await syncPair(victim, honest);
    const attacker = AgentKey.random();
    const head = (await victim.head()) as string;
    const wipe = commitObject({
      tree: EMPTY_TREE_OID,
      parents: [head],
      time: victim.readCommit(head).time,
    });
    const r = await againstVictim(victim, attacker, (a) =>
      push(a, wipe.oid, [wipe, makeObject('tree', new Uint8Array(0))]),
    );
    expect(r.error, String(r.error)).toBeNull();
    expect(await victim.recall()).toHaveLength(3);
    // main is a merge of our head and theirs, with our tree
    const merged = victim.readCommit((await victim.head()) as string);
    expect(merged.parents.sort()).toEqual([head, wipe.oid].sort());
    expect(merged.tree).toBe(victim.readCommit(head).tree);
    expect(fsck(victim.dir).status).toBe(0);
    // the honest peer that already had our history syncs with us and keeps everything too
    await syncPair(honest, victim);
    expect(await honest.recall()).toHaveLength(3);
    expect(await honest.head()).toBe(await victim.head());
    expect(fsck(honest.dir).status).toBe(0);
  });

  it('holds for any hostile history (deletions, rewrites, additions, any parent)', async () => {
    const attacker = AgentKey.random();
    const params = propertyParams('hostile histories keep every local entry', { numRuns: 25 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          batches: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
          commits: fc.array(
            fc.record({
              keep: fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
              added: fc.integer({ min: 0, max: 2 }),
              sendExisting: fc.boolean(),
            }),
            { minLength: 1, maxLength: 3 },
          ),
          parent: fc.constantFrom('head', 'ancestor', 'none'),
          sameTime: fc.boolean(),
        }),
        async (plan) => {
          const victim = await open('prop');
          for (const [i, n] of plan.batches.entries()) await victim.rememberMany(memories(`b${i}`, n));
          const before = mainEntryIds(victim.dir);
          const head = (await victim.head()) as string;
          const ancestors: string[] = [];
          for (let c: string | undefined = head; c; c = victim.readCommit(c).parents[0]) ancestors.push(c);
          const theirs = victim
            .leaves(head)
            .map((l) => ({ id: l.id, bytes: victim.odb.readTyped(l.blob, 'blob') }));
          const objects: StoredObject[] = [];
          let parents =
            plan.parent === 'head'
              ? [head]
              : plan.parent === 'ancestor'
                ? [ancestors[ancestors.length - 1] as string]
                : [];
          let tip = '';
          let n = 0;
          const times = new Map<string, number>();
          const timeOf = (c: string) => times.get(c) ?? victim.readCommit(c).time;
          for (const c of plan.commits) {
            const kept = theirs.filter((_, i) => c.keep[i % 9]);
            const fresh = Array.from({ length: c.added }, () =>
              signEntry(attacker, 'post', { text: `attacker ${n++} ${Math.random()}` }),
            );
            const entries = [...kept, ...fresh];
            const blobs = entries.map((e) => makeObject('blob', e.bytes));
            for (const [i, b] of blobs.entries()) if (i >= kept.length || c.sendExisting) objects.push(b);
            const tree = treeOf(
              entries.map((e, i) => ({ path: entryTreePath(e.id), oid: (blobs[i] as StoredObject).oid })),
              objects,
            );
            const time = plan.sameTime && parents[0] ? timeOf(parents[0]) : Math.floor(Date.now() / 1000);
            const commit = commitObject({ tree, parents, time });
            times.set(commit.oid, time);
            objects.push(commit);
            parents = [commit.oid];
            tip = commit.oid;
          }
          // Trees the victim holds at the same path are not resent by a real sender; drop duplicates.
          const unique = [...new Map(objects.map((o) => [o.oid, o])).values()];
          const r = await againstVictim(victim, attacker, (a) => push(a, tip, unique));
          const after = mainEntryIds(victim.dir);
          for (const id of before) expect(after).toContain(id);
          expect(fsck(victim.dir).status).toBe(0);
          if (r.error === null) expect(after.length).toBeGreaterThanOrEqual(before.length);
        },
      ),
      params,
    );
  }, 240_000);
});

describe('what a peer references is verified as if the peer had sent it', () => {
  it('refuses our own private entry referenced without its blob; main stays syncable', async () => {
    const victim = await open('pv');
    const attacker = AgentKey.random();
    await victim.remember({ type: 'observation', content: 'public' });
    const secret = await victim.remember({
      type: 'learning',
      content: 'only for you',
      shareWith: [attacker.onion],
    });
    // The attacker knows the private entry's exact bytes (it opened its envelope).
    const bytes = new TextEncoder().encode(`${canonicalJson(secret as never)}\n`);
    const { objects, head } = history([[entryTreePath(entryId(bytes)), bytes]]);
    const withoutBlob = objects.filter((o) => o.type !== 'blob');
    const before = await victim.head();
    const r = await againstVictim(victim, attacker, (a) => push(a, head, withoutBlob));
    expect(hasCode(r.error, 'ERR_UNTRUSTED_DATA'), String(r.error)).toBe(true);
    expect((r.error as Error).message).toMatch(/not public/);
    expect(await victim.head()).toBe(before);
    const honest = await open('ph');
    await syncPair(victim, honest);
    expect(await honest.recall()).toHaveLength(1);
    expect(fsck(victim.dir).status).toBe(0);
  });

  it('refuses a parent outside main (our private branch) and an unreferenced local commit', async () => {
    const victim = await open('pp');
    const attacker = AgentKey.random();
    await victim.remember({ type: 'observation', content: 'public' });
    await victim.remember({ type: 'reflection', content: 'private', visibility: 'private' });
    const priv = (await victim.privateHead()) as string;
    const good = signEntry(attacker, 'post', { text: 'hello' });
    const { objects, head } = history(files([good]), { parents: [priv] });
    const r = await againstVictim(victim, attacker, (a) => push(a, head, objects));
    expect(hasCode(r.error, 'ERR_UNTRUSTED_DATA'), String(r.error)).toBe(true);
    expect(mainEntryIds(victim.dir)).toHaveLength(1);
  });

  it('answers HAVE from main only', async () => {
    const victim = await open('hv');
    const attacker = AgentKey.random();
    await victim.remember({ type: 'observation', content: 'public' });
    await victim.remember({ type: 'reflection', content: 'private', visibility: 'private' });
    const main = (await victim.head()) as string;
    const priv = (await victim.privateHead()) as string;
    // a complete commit that no ref points at (as an interrupted sync leaves)
    const stray = commitObject({ tree: EMPTY_TREE_OID });
    await victim.odb.write([stray, makeObject('tree', new Uint8Array(0))]);
    let bits: Uint8Array | null = null;
    await againstVictim(victim, attacker, async (a) => {
      expect(await offer(a, 'ab'.repeat(20))).toBe(true);
      await a.send(F.have, { ids: [main, priv, stray.oid] });
      bits = (await a.read()).payload;
    });
    expect(Array.from(bits ?? [])).toEqual([0b001]);
  });
});

describe('commit metadata is fixed and bounded', () => {
  const cases: [string, (victim: MemoryStore) => StoredObject, string][] = [
    [
      'free-text message',
      () => commitObject({ tree: EMPTY_TREE_OID, message: 'hello\n' }),
      'ERR_UNTRUSTED_DATA',
    ],
    [
      '4 MiB message',
      () => commitObject({ tree: EMPTY_TREE_OID, message: `${'A'.repeat(4 * 1024 * 1024)}\n` }),
      'ERR_TOO_LARGE',
    ],
    [
      'foreign identity',
      () => commitObject({ tree: EMPTY_TREE_OID, ident: 'Eve <e@x>' }),
      'ERR_UNTRUSTED_DATA',
    ],
    [
      'time two days ahead',
      () => commitObject({ tree: EMPTY_TREE_OID, time: Math.floor(Date.now() / 1000) + 2 * 86_400 }),
      'ERR_UNTRUSTED_DATA',
    ],
    [
      'older than its parent',
      (v) => {
        const head = readRef(v.dir, PUBLIC_REF) as string;
        return commitObject({ tree: EMPTY_TREE_OID, parents: [head], time: v.readCommit(head).time - 10 });
      },
      'ERR_UNTRUSTED_DATA',
    ],
    [
      'three parents',
      () => {
        const p = [1, 2, 3].map((t) => commitObject({ tree: EMPTY_TREE_OID, time: t }));
        return commitObject({ tree: EMPTY_TREE_OID, parents: p.map((c) => c.oid) });
      },
      'ERR_UNTRUSTED_DATA',
    ],
  ];
  it.each(cases)('refuses a commit with a %s', async (_name, make, code) => {
    const victim = await open('meta');
    await victim.remember({ type: 'observation', content: 'x' });
    const c = make(victim);
    const attacker = AgentKey.random();
    const r = await againstVictim(victim, attacker, (a) =>
      push(a, c.oid, [c, makeObject('tree', new Uint8Array(0))]),
    );
    expect(hasCode(r.error, code as never), String(r.error)).toBe(true);
    expect(mainEntryIds(victim.dir)).toHaveLength(1);
  });
});

/** Stream bytes of a blob header claiming `size` bytes, followed by `zeros` zero bytes, deflated. */
function bombAfterHeader(size: number, zeros: number): Buffer {
  const h = Buffer.alloc(5);
  h[0] = 3;
  h.writeUInt32BE(size, 1);
  return deflateRawSync(Buffer.concat([h, Buffer.alloc(zeros)]), { level: 9 });
}

describe('decompression bombs and oversized packs', () => {
  const tmpPacks = (s: MemoryStore) => {
    try {
      return readdirSync(join(s.dir, 'objects/pack')).filter((f) => f.startsWith('tmp_'));
    } catch {
      return [];
    }
  };

  it('stops inflating at the announced size, before the second frame', async () => {
    const victim = await open('bomb');
    const attacker = AgentKey.random();
    const z = bombAfterHeader(60_000, 64 * 1024 * 1024); // ≈ 64 KiB that inflate to 64 MiB
    let accepted = 0;
    let reply: number | null = null;
    const r = await againstVictim(
      victim,
      attacker,
      async (a) => {
        await offer(a, 'ab'.repeat(20));
        await a.send(F.packInfo, { objects: 1, rawBytes: 60_005 });
        for (let i = 0; i < z.length; i += 4096) await a.send(F.pack, z.subarray(i, i + 4096));
        reply = (await a.read()).type;
      },
      {
        onProgress: (p) => {
          if (p.stage === 'receive') accepted = p.bytes;
        },
      },
    );
    expect(hasCode(r.error, 'ERR_TOO_LARGE'), String(r.error)).toBe(true);
    expect((r.error as Error).message).toMatch(/announced size/);
    expect(reply).toBe(F.error);
    // The victim inflated at most one 4 KiB frame past the bound (that one inflates past 60,005 bytes).
    expect(accepted).toBeLessThanOrEqual(4096);
    expect(z.length).toBeGreaterThan(8 * 4096);
    expect(tmpPacks(victim)).toEqual([]);
    expect(await victim.head()).toBeNull();
  });

  it('refuses an announcement past the limits before reading any pack data', async () => {
    const victim = await open('announce');
    const attacker = AgentKey.random();
    for (const [info, code] of [
      [{ objects: 1, rawBytes: 1024 ** 3 }, 'ERR_TOO_LARGE'],
      [{ objects: 10_000_000, rawBytes: 100 }, 'ERR_TOO_LARGE'],
      [{ objects: 2, rawBytes: 3 }, 'ERR_SYNC'],
      [{ objects: -1, rawBytes: 3 }, 'ERR_SYNC'],
    ] as const) {
      let reply: number | null = null;
      const r = await againstVictim(victim, attacker, async (a) => {
        await offer(a, 'ab'.repeat(20));
        await a.send(F.packInfo, info);
        reply = (await a.read()).type;
      });
      expect(hasCode(r.error, code), `${JSON.stringify(info)}: ${String(r.error)}`).toBe(true);
      expect(reply).toBe(F.error);
    }
  });

  it('refuses an object larger than its type allows as soon as its header arrives', async () => {
    const victim = await open('objsize');
    const attacker = AgentKey.random();
    const h = Buffer.alloc(5);
    h[0] = 1; // a commit of 1 MiB
    h.writeUInt32BE(1024 * 1024, 1);
    const r = await againstVictim(victim, attacker, async (a) => {
      await offer(a, 'ab'.repeat(20));
      await a.pack(h, { objects: 1, rawBytes: 1024 * 1024 + 5 });
      await a.read();
    });
    expect(hasCode(r.error, 'ERR_TOO_LARGE'), String(r.error)).toBe(true);
  });

  it('refuses a control frame larger than its type allows before reading it', async () => {
    const victim = await open('frame');
    const attacker = AgentKey.random();
    const r = await againstVictim(victim, attacker, async (a) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(1024 * 1024, 0);
      head[4] = F.hello;
      await a.ch.write(head);
      await a.read();
    });
    expect(hasCode(r.error, 'ERR_TOO_LARGE'), String(r.error)).toBe(true);
  });
});
