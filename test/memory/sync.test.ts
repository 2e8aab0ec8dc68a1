import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { canonicalJson } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { entryId, signEntry } from '../../src/memory/entry.js';
import { makeObject, type StoredObject } from '../../src/memory/odb.js';
import type { MemoryStore } from '../../src/memory/store.js';
import { type SyncResult, syncOverChannel } from '../../src/memory/sync/index.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { againstVictim, entryTreePath, history, rawPack } from './_attacker.js';
import { fsck, git as gitCli, peerOf, socketPair, storeOpener } from './_helpers.js';

const open = storeOpener('sync');

async function sync(a: MemoryStore, b: MemoryStore): Promise<[SyncResult, SyncResult]> {
  const [ca, cb, done] = await socketPair();
  try {
    return await Promise.all([
      syncOverChannel(a, channelFromDuplex(ca), { role: 'initiator', peer: peerOf(b) }),
      syncOverChannel(b, channelFromDuplex(cb), { role: 'responder', peer: peerOf(a) }),
    ]);
  } finally {
    done();
  }
}

const memories = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    type: 'observation' as const,
    content: `${tag} ${i}`,
    tags: [tag],
  }));

async function contents(s: MemoryStore): Promise<string[]> {
  const all = await s.recall();
  expect(all.every((e) => e.verified)).toBe(true);
  return all.map((e) => String(e.entry?.body.content ?? e.entry?.body.text)).sort();
}

/** Everything that makes up a repo's state: refs and object files. */
function snapshot(s: MemoryStore): string {
  const list = (d: string): string[] => {
    try {
      return readdirSync(join(s.dir, d), { recursive: true }).map(String).sort();
    } catch {
      return [];
    }
  };
  return JSON.stringify([gitCli(s.dir, 'for-each-ref'), list('objects'), list('refs')]);
}

describe('syncOverChannel', () => {
  it('converges two stores with independent memories, both ways, on the same merge commit', async () => {
    const a = await open('a');
    const b = await open('b');
    for (const m of memories('a', 5)) await a.remember(m);
    for (const m of memories('b', 7)) await b.remember(m);
    await b.post('a post by b');
    await a.remember({ type: 'reflection', content: 'private to a', visibility: 'private' });
    const [ra, rb] = await sync(a, b);
    expect(ra.head).toBe(rb.head);
    expect(ra.head).toBe(await b.head());
    expect(ra).toMatchObject({ sent: 5, received: 8 });
    expect(rb).toMatchObject({ sent: 8, received: 5 });
    expect(gitCli(a.dir, 'rev-list', '--parents', '-n', '1', 'main').trim().split(' ')).toHaveLength(3);
    const want = [...memories('a', 5), ...memories('b', 7)].map((m) => m.content).concat('a post by b');
    expect((await contents(b)).sort()).toEqual(want.sort());
    expect((await a.recall({ visibility: 'public' })).length).toBe(13);
    // the private entry never left a
    expect(JSON.stringify(await b.recall())).not.toContain('private to a');
    expect(gitCli(b.dir, 'cat-file', '--batch-all-objects', '--batch')).not.toContain('private to a');
    expect(fsck(a.dir).status).toBe(0);
    expect(fsck(b.dir).status).toBe(0);

    // nothing new: a no-op
    const [n1, n2] = await sync(b, a);
    expect(n1).toMatchObject({ sent: 0, received: 0, head: ra.head });
    expect(n2).toMatchObject({ sent: 0, received: 0, head: ra.head });

    // new on one side only: fast-forward, no merge commit
    await a.rememberMany(memories('a2', 3));
    const [f1, f2] = await sync(b, a);
    expect(f1).toMatchObject({ received: 3, head: await a.head() });
    expect(f2.sent).toBe(3);
    expect(gitCli(b.dir, 'rev-list', '--parents', '-n', '1', 'main').trim().split(' ')).toHaveLength(2);
  });

  it('converges three stores in a ring and an empty store', async () => {
    const s = [await open('r0'), await open('r1'), await open('r2')];
    for (const [i, st] of s.entries()) await st.rememberMany(memories(`ring${i}`, 4 + i));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) await sync(s[i] as MemoryStore, s[(i + 1) % 3] as MemoryStore);
    }
    const heads = await Promise.all(s.map((x) => x.head()));
    expect(new Set(heads).size).toBe(1);
    for (const st of s) {
      expect(await contents(st)).toHaveLength(15);
      expect(fsck(st.dir).status).toBe(0);
    }
    const empty = await open('empty');
    const [r] = await sync(empty, s[0] as MemoryStore);
    expect(r).toMatchObject({ received: 15, head: heads[0] });
  });

  it('leaves the repo valid when the peer vanishes mid-sync, and the next sync completes', async () => {
    const a = await open('va');
    const b = await open('vb');
    for (let i = 0; i < 10; i++) await a.rememberMany(memories(`v${i}`, 20));
    const before = snapshot(b);
    // a ↔ relay ↔ b, where the relay drops the connection after 5,000 bytes from a (mid-pack)
    const [ca, ra, doneA] = await socketPair();
    const [rb, cb, doneB] = await socketPair();
    let relayed = 0;
    ra.on('data', (d: Buffer) => {
      relayed += d.length;
      if (relayed <= 5000) rb.write(d);
      else {
        rb.end(d.subarray(0, d.length - (relayed - 5000)), () => {
          ra.destroy();
          rb.destroy();
        });
      }
    });
    rb.on('data', (d: Buffer) => ra.writable && ra.write(d));
    const [ea, eb] = await Promise.all([
      syncOverChannel(a, channelFromDuplex(ca), { role: 'initiator', peer: peerOf(b) }).catch(
        (e: unknown) => e,
      ),
      syncOverChannel(b, channelFromDuplex(cb), { role: 'responder', peer: peerOf(a) }).catch(
        (e: unknown) => e,
      ),
    ]);
    doneA();
    doneB();
    expect(ea).toBeInstanceOf(Error);
    expect(hasCode(eb, 'ERR_CONNECTION_CLOSED') || hasCode(eb, 'ERR_SYNC')).toBe(true);
    expect(snapshot(b)).toBe(before);
    expect(fsck(b.dir).status).toBe(0);
    const [r] = await sync(b, a);
    expect(r.received).toBe(200);
    expect(await b.head()).toBe(await a.head());
  });

  it('survives kill -9 of the receiving process and resumes', async () => {
    const a = await open('ka');
    const bKey = AgentKey.random();
    const b = await open('kb', bKey);
    for (let i = 0; i < 20; i++) await a.rememberMany(memories(`k${i}`, 50));
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as { port: number };
      const child = spawn(
        join(process.cwd(), 'node_modules/.bin/vite-node'),
        [
          join(process.cwd(), 'test/memory/fixtures/sync-peer.ts'),
          b.dir,
          Buffer.from(bKey.exportSeed()).toString('hex'),
          a.key.publicKeyHex,
          String(port),
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const [sock] = (await once(server, 'connection')) as [Socket];
      const pa = syncOverChannel(a, channelFromDuplex(sock), { role: 'initiator', peer: peerOf(b) }).catch(
        (e: unknown) => e,
      );
      // kill at a different point each time: on first bytes, at verification, at integration
      const stage = ['receive', 'verify', 'integrate'][attempt] as string;
      let out = '';
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes(stage)) resolve();
        });
        child.once('exit', () => resolve());
      });
      child.kill('SIGKILL');
      await once(child, 'exit').catch(() => {});
      await pa;
      sock.destroy();
      server.close();
      expect(fsck(b.dir)).toMatchObject({ status: 0 });
    }
    const [r] = await sync(b, a);
    expect(await b.head()).toBe(await a.head());
    expect(r.received).toBeLessThanOrEqual(1000);
    expect(await b.recall()).toHaveLength(1000);
    expect(fsck(b.dir).status).toBe(0);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------------
// A malicious peer speaking the wire protocol by hand (the real sender never produces these packs).

async function attack(
  victim: MemoryStore,
  attacker: AgentKey,
  make: () => { head: string; objects: StoredObject[] },
  options: { maxPackBytes?: number; acceptAuthor?: (a: string) => boolean; extra?: StoredObject[] } = {},
): Promise<unknown> {
  const { extra, ...syncOptions } = options;
  const { error } = await againstVictim(
    victim,
    attacker,
    async (a) => {
      await a.hello();
      const { head, objects } = make();
      await a.ref(head);
      await a.read(); // WANT
      const all = [...objects, ...(extra ?? [])];
      await a.pack(rawPack(all), { objects: all.length });
      await a.read().catch(() => null);
    },
    syncOptions,
  );
  return error;
}

const path = entryTreePath;

describe('syncOverChannel against a malicious peer', () => {
  it('refuses forged, unsigned, misplaced, private, unreferenced and oversized data and changes nothing', async () => {
    const victim = await open('victim');
    await victim.rememberMany(memories('mine', 3));
    const attacker = AgentKey.random();
    const other = AgentKey.random();
    const good = signEntry(attacker, 'post', { text: 'fine' });
    const forgedBytes = new TextEncoder().encode(
      new TextDecoder().decode(good.bytes).replace('fine', 'evil'),
    );
    const impostor = signEntry(other, 'post', { text: 'claims to be by someone' });
    const impostorForged = new TextEncoder().encode(
      new TextDecoder().decode(impostor.bytes).replace(other.publicKeyHex, attacker.publicKeyHex),
    );
    const unsigned = new TextEncoder().encode(
      `${canonicalJson({ format: 'mmogit-entry', text: 'no sig' })}\n`,
    );
    const priv = signEntry(attacker, 'post', { text: 'secret' }, { visibility: 'private' });
    const cases: [string, () => { head: string; objects: StoredObject[] }, string, object?][] = [
      ['forged content', () => history([[path(entryId(forgedBytes)), forgedBytes]]), 'ERR_BAD_SIGNATURE'],
      [
        'forged author',
        () => history([[path(entryId(impostorForged)), impostorForged]]),
        'ERR_BAD_SIGNATURE',
      ],
      ['unsigned entry', () => history([[path(entryId(unsigned)), unsigned]]), 'ERR_UNTRUSTED_DATA'],
      ['name not the hash', () => history([[path(entryId(unsigned)), good.bytes]]), 'ERR_UNTRUSTED_DATA'],
      ['path outside layout', () => history([[['evil.sh'], good.bytes]]), 'ERR_UNTRUSTED_DATA'],
      ['private entry', () => history([[path(priv.id), priv.bytes]]), 'ERR_UNTRUSTED_DATA'],
      [
        'author not allowed',
        () => history([[path(impostor.id), impostor.bytes]]),
        'ERR_UNTRUSTED_DATA',
        { acceptAuthor: (a: string) => a === attacker.publicKeyHex },
      ],
      [
        'unreferenced object',
        () => history([[path(good.id), good.bytes]]),
        'ERR_UNTRUSTED_DATA',
        { extra: [makeObject('blob', new TextEncoder().encode('smuggled'))] },
      ],
      ['oversized pack', () => history([[path(good.id), good.bytes]]), 'ERR_TOO_LARGE', { maxPackBytes: 64 }],
    ];
    const before = snapshot(victim);
    const head = await victim.head();
    for (const [name, make, code, opts] of cases) {
      const err = await attack(victim, attacker, make, opts ?? {});
      expect(hasCode(err, code as never), `${name}: ${(err as Error | null)?.message}`).toBe(true);
      expect(snapshot(victim), name).toBe(before);
    }
    expect(await victim.head()).toBe(head);
    expect(fsck(victim.dir).status).toBe(0);
    // the same peer with a valid history is accepted (our malicious peer then hangs up instead of receiving)
    const ok = await attack(victim, attacker, () => history([[path(good.id), good.bytes]]));
    expect(ok === null || hasCode(ok, 'ERR_CONNECTION_CLOSED'), String(ok)).toBe(true);
    expect((await victim.recall({ kind: 'post' })).map((e) => e.entry?.body.text)).toEqual(['fine']);
    expect(fsck(victim.dir).status).toBe(0);
  });
});
