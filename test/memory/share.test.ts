import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { encodeCommit } from '../../src/memory/_git.js';
import { decodeEntry, type EncodedEntry, entryPath, signEntry } from '../../src/memory/entry.js';
import { makeObject, type StoredObject } from '../../src/memory/odb.js';
import { PUBLIC_REF, readRef, updateRef } from '../../src/memory/refs.js';
import { openerFor, recipientOf, sealEntry } from '../../src/memory/sealed.js';
import { COMMIT_IDENT, type MemoryStore } from '../../src/memory/store.js';
import { syncOverChannel } from '../../src/memory/sync/index.js';
import { type ByteChannel, channelFromDuplex } from '../../src/transport/byte-channel.js';
import { fsck, peerOf, socketPair, storeOpener } from './_helpers.js';

const open = storeOpener('share');

/** Records every byte `ch` reads (what the peer sent us). */
function tap(ch: ByteChannel, into: Uint8Array[]): ByteChannel {
  return new Proxy(ch, {
    get(target, prop, receiver) {
      if (prop === 'readExactly') {
        return async (n: number, o?: { signal?: AbortSignal }) => {
          const b = await target.readExactly(n, o);
          into.push(Uint8Array.from(b));
          return b;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** Syncs a → b; returns the raw, inflated pack stream b received from a. */
async function sync(a: MemoryStore, b: MemoryStore): Promise<Buffer> {
  const [ca, cb, done] = await socketPair();
  const received: Uint8Array[] = [];
  try {
    const [ra, rb] = await Promise.allSettled([
      syncOverChannel(a, channelFromDuplex(ca), { role: 'initiator', peer: peerOf(b) }),
      syncOverChannel(b, tap(channelFromDuplex(cb), received), { role: 'responder', peer: peerOf(a) }),
    ]);
    // The receiver's reason first (the sender only learns that the peer refused).
    if (rb.status === 'rejected') throw rb.reason;
    if (ra.status === 'rejected') throw ra.reason;
  } finally {
    done();
  }
  // Re-frame what b read: u32 length ‖ type ‖ payload; inflate the PACK (6) frames.
  const all = Buffer.concat(received);
  const packs: Buffer[] = [];
  for (let at = 0; at + 5 <= all.length; ) {
    const len = all.readUInt32BE(at);
    if (all[at + 4] === 6) packs.push(all.subarray(at + 5, at + 4 + len));
    at += 4 + len;
  }
  return packs.length ? inflateRawSync(Buffer.concat(packs)) : Buffer.alloc(0);
}

/** The uncompressed content of every object in a repository (loose and packed), via real git. */
function allObjects(dir: string): string {
  return execFileSync('git', ['-C', dir, 'cat-file', '--batch-all-objects', '--batch'], {
    encoding: 'latin1',
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * A marker that cannot occur by chance in a hash, a signature or compressed bytes (128 random bits as 32 hex
 * digits): if the text ever contains it, the plaintext leaked.
 */
const MARKER = randomBytes(16).toString('hex');
const SECRET = `the vault code is ${MARKER}`;

describe('sharing private entries with chosen peers', () => {
  it('B reads the shared private memory after a sync; C gets only ciphertext; nothing leaks in plaintext', async () => {
    const a = await open('a');
    const b = await open('b');
    const c = await open('c');
    await a.remember({ type: 'observation', content: 'public note', tags: ['pub'] });
    const secret = await a.remember({
      type: 'learning',
      content: SECRET,
      tags: ['vault'],
      shareWith: [b.key.onion],
    });
    await a.remember({ type: 'reflection', content: 'unshared private thought', visibility: 'private' });
    expect(secret.visibility).toBe('private');

    // A's own view: the private memory, marked as shared with B; envelopes and share records are plumbing.
    const mine = await a.recall();
    expect(mine.map((e) => e.kind).sort()).toEqual(['memory', 'memory', 'memory']);
    const own = mine.find((e) => e.entry?.body.content === SECRET);
    expect(own).toMatchObject({ verified: true, visibility: 'private', sharedWith: [b.key.onion] });
    expect((await a.recall({ kind: 'sealed' })).map((e) => e.entry?.body.to)).toEqual([b.key.publicKeyHex]);

    const packB = await sync(a, b);
    const packC = await sync(a, c);

    const atB = await b.recall();
    const got = atB.find((e) => e.entry?.body.content === SECRET);
    expect(got).toMatchObject({
      id: own?.id,
      verified: true,
      author: a.key.onion,
      kind: 'memory',
      visibility: 'private',
      sharedWith: [b.key.onion],
    });
    expect(got?.envelope).toMatch(/^[0-9a-f]{64}$/);
    expect(atB.map((e) => e.entry?.body.content).sort()).toEqual(['public note', SECRET]);
    expect(await b.recall({ visibility: 'private', author: a.key.onion })).toHaveLength(1);
    expect(await b.recall({ tag: 'vault' })).toHaveLength(1);

    // C: the public memory only; the envelope is there as ciphertext it cannot open.
    const atC = await c.recall();
    expect(atC.map((e) => e.entry?.body.content)).toEqual(['public note']);
    expect(atC.every((e) => e.verified)).toBe(true);
    expect(await c.recall({ kind: 'sealed' })).toHaveLength(1);

    // Nothing private in plaintext: not in the pack streams, not in any object at B or C (B keeps it sealed).
    for (const [what, text] of [
      ['pack to B', packB.toString('latin1')],
      ['pack to C', packC.toString('latin1')],
      ['objects at B', allObjects(b.dir)],
      ['objects at C', allObjects(c.dir)],
    ] as const) {
      expect(text.length, what).toBeGreaterThan(0);
      expect(text.includes('public note'), what).toBe(true); // the check can see plaintext when it is there
      expect(text.includes(MARKER), what).toBe(false);
      expect(text.includes('unshared private thought'), what).toBe(false);
      expect(text.includes(own?.entry?.signature as string), what).toBe(false);
      expect(text.includes(own?.id as string), what).toBe(false);
    }
    expect(allObjects(a.dir).includes(SECRET)).toBe(true);
    for (const s of [a, b, c]) expect(fsck(s.dir).status).toBe(0);
  });

  it('relays envelopes through a third store, and share() adds recipients to an existing private entry', async () => {
    const a = await open('a2');
    const b = await open('b2');
    const c = await open('c2');
    const e = await a.post('meet at dawn', { visibility: 'private', tags: ['plan'] });
    const id = (await a.recall({ kind: 'post' }))[0]?.id as string;
    expect(await a.share(id, [c.key.publicKeyHex])).toHaveLength(1);
    expect(await a.share(id, [b.key.onion, a.key.onion])).toHaveLength(1); // ourselves: skipped
    expect((await a.recall({ kind: 'post' }))[0]?.sharedWith).toEqual([b.key.onion, c.key.onion].sort());
    // A → C → B: C relays B's envelope without being able to read it.
    await sync(a, c);
    await sync(c, b);
    const atB = await b.recall({ kind: 'post' });
    expect(atB).toHaveLength(1);
    expect(atB[0]).toMatchObject({ verified: true, author: a.key.onion, visibility: 'private' });
    expect(atB[0]?.entry).toEqual(e);
    expect((await c.recall({ kind: 'post' }))[0]?.entry?.body.text).toBe('meet at dawn');
    await expect(a.share('0'.repeat(64), [b.key.onion])).rejects.toSatisfy((x) =>
      hasCode(x, 'ERR_NOT_FOUND'),
    );
  });

  it('validates shareWith', async () => {
    const a = await open('a3');
    const bad = [
      { shareWith: ['not-an-onion'] },
      { shareWith: [AgentKey.random().onion], visibility: 'public' as const },
      { shareWith: 'x' as unknown as string[] },
    ];
    for (const extra of bad) {
      await expect(a.remember({ type: 'task', content: 'x', ...extra })).rejects.toSatisfy(
        (x) => hasCode(x, 'ERR_INVALID_MEMORY') || hasCode(x, 'ERR_INVALID_ONION'),
      );
    }
    await expect(a.append('sealed', { x: 1 })).rejects.toSatisfy((x) => hasCode(x, 'ERR_INVALID_MEMORY'));
    // an empty list still means private
    expect((await a.remember({ type: 'task', content: 'y', shareWith: [] })).visibility).toBe('private');
    expect(await a.head()).toBeNull();
    // too large to seal: refused before anything is written
    await expect(
      a.remember({ type: 'task', content: 'z'.repeat(60_000), shareWith: [AgentKey.random().onion] }),
    ).rejects.toSatisfy((x) => hasCode(x, 'ERR_TOO_LARGE'));
    expect(await a.head()).toBeNull();
  });

  it('derives the X25519 keys as libsodium does (agrees with @noble/curves)', () => {
    const k = AgentKey.random();
    const seed = k.exportSeed();
    const r = recipientOf(k.onion);
    expect(Buffer.from(r.x25519)).toEqual(Buffer.from(ed25519.utils.toMontgomery(k.publicKey)));
    const scalar = ed25519.utils.toMontgomerySecret(seed);
    expect(Buffer.from(x25519.getPublicKey(scalar))).toEqual(Buffer.from(r.x25519));
    const jwk = openerFor(k).export({ format: 'jwk' });
    expect(Buffer.from(jwk.d as string, 'base64url')).toEqual(Buffer.from(scalar));
  });
});

/** Commits `entries` on top of `store`'s main by hand (bypassing the store's checks, as a malicious peer would). */
async function plant(store: MemoryStore, entries: EncodedEntry[]): Promise<void> {
  const head = readRef(store.dir, PUBLIC_REF);
  const objects: StoredObject[] = [];
  const files = entries.map((e) => {
    const blob = makeObject('blob', e.bytes);
    objects.push(blob);
    return { path: entryPath(e.id), oid: blob.oid };
  });
  const tree = store.buildTree(head ? store.readCommit(head).tree : null, files, objects);
  const commit = makeObject(
    'commit',
    encodeCommit({
      tree,
      parents: head ? [head] : [],
      ident: COMMIT_IDENT,
      time: Math.floor(Date.now() / 1000),
      message: 'remember 1 entry\n',
    }),
  );
  objects.push(commit);
  await store.odb.write(objects);
  expect(await updateRef(store.dir, PUBLIC_REF, commit.oid, head)).toBe(true);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('tampered and forged envelopes', () => {
  it('refuses an envelope altered in transit and one claiming another author; reports undecryptable ones', async () => {
    const a = await open('ta');
    const b = await open('tb');
    const m = await open('tm');
    const inner = signEntry(
      a.key,
      'memory',
      { type: 'task', content: SECRET, tags: [], confidence: 0.8, references: [] },
      { visibility: 'private' },
    );
    const good = sealEntry(a.key, inner, recipientOf(b.key.onion));
    const body = good.entry.body as { ciphertext: string };
    const flipped = Buffer.from(body.ciphertext, 'base64');
    flipped[5] = (flipped[5] as number) ^ 1;
    const flippedB64 = flipped.toString('base64');

    // 1. ciphertext altered after A signed: the envelope's signature fails, the sync is refused.
    const altered = enc.encode(dec.decode(good.bytes).replace(body.ciphertext, flippedB64));
    const alteredEntry = { id: decodeEntry(altered).id, entry: good.entry, bytes: altered };
    await plant(m, [alteredEntry]);
    const err1 = await sync(m, b).then(
      () => null,
      (e: unknown) => e,
    );
    expect(hasCode(err1, 'ERR_BAD_SIGNATURE'), String(err1)).toBe(true);
    expect(await b.head()).toBeNull();

    // 2. an envelope claiming A as author but signed by M: refused the same way.
    const m2 = await open('tm2');
    const claimed = signEntry(m2.key, 'sealed', good.entry.body, { createdAt: good.entry.createdAt });
    const claimedBytes = enc.encode(
      dec.decode(claimed.bytes).replace(m2.key.publicKeyHex, a.key.publicKeyHex),
    );
    await plant(m2, [{ id: decodeEntry(claimedBytes).id, entry: claimed.entry, bytes: claimedBytes }]);
    const err2 = await sync(m2, b).then(
      () => null,
      (e: unknown) => e,
    );
    expect(hasCode(err2, 'ERR_BAD_SIGNATURE'), String(err2)).toBe(true);
    expect(await b.head()).toBeNull();

    // 3. validly signed envelopes that must not open: A's body re-signed by M (the key binds the sender),
    //    a corrupted ciphertext signed by A, and A's private entry sealed by M under M's own name.
    const m3 = await open('tm3');
    const resigned = signEntry(m3.key, 'sealed', good.entry.body, { createdAt: good.entry.createdAt });
    const corrupt = signEntry(
      a.key,
      'sealed',
      { ...good.entry.body, ciphertext: flippedB64 },
      { createdAt: good.entry.createdAt },
    );
    const wrapped = sealEntry(m3.key, inner, recipientOf(b.key.onion));
    await plant(m3, [resigned, corrupt, wrapped]);
    await sync(m3, b);
    const atB = await b.recall();
    expect(atB).toHaveLength(3);
    expect(atB.every((e) => !e.verified && e.kind === 'sealed' && e.sharedWith === undefined)).toBe(true);
    expect(atB.map((e) => e.problem).sort()).toEqual([
      'sealed entry does not decrypt (tampered, or not by its author)',
      'sealed entry does not decrypt (tampered, or not by its author)',
      'sealed inner entry is by another author than its envelope',
    ]);
    expect(atB.some((e) => JSON.stringify(e).includes(MARKER))).toBe(false);
    expect(await b.recall({ includeUnverified: false })).toHaveLength(0);

    // The genuine envelope still opens.
    await plant(a, [good]);
    await sync(a, b);
    const ok = await b.recall({ includeUnverified: false });
    expect(ok.map((e) => e.entry?.body.content)).toEqual([SECRET]);
    expect(ok[0]?.author).toBe(a.key.onion);
  });

  it('refuses a malformed envelope body at sync', async () => {
    const a = await open('ma');
    const b = await open('mb');
    const inner = signEntry(a.key, 'note', { x: 'y' }, { visibility: 'private' });
    const good = sealEntry(a.key, inner, recipientOf(b.key.onion));
    const bad = signEntry(a.key, 'sealed', { ...good.entry.body, extra: 1 });
    await plant(a, [bad]);
    const err = await sync(a, b).then(
      () => null,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_UNTRUSTED_DATA'), String(err)).toBe(true);
  });
});
