import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { signEntry } from '../../src/memory/entry.js';
import { SyncQuota } from '../../src/memory/sync/index.js';
import { againstVictim, entryTreePath, F, history, rawPack } from './_attacker.js';
import { storeOpener, syncPair } from './_helpers.js';

const open = storeOpener('quota');

describe('per-peer sync quotas', () => {
  it('runs one sync at a time per peer, refusing the second with ERR_RATE_LIMITED and an ERROR frame', async () => {
    const victim = await open('v');
    const attacker = AgentKey.random();
    const quota = new SyncQuota();
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    // The first session stalls after its hello; the second arrives meanwhile.
    const first = againstVictim(
      victim,
      attacker,
      async (a) => {
        await a.hello();
        await held;
      },
      { quota },
    );
    await new Promise((r) => setTimeout(r, 50));
    let reply: { type: number; code: unknown } | null = null;
    const second = await againstVictim(
      victim,
      attacker,
      async (a) => {
        const f = await a.read();
        reply = { type: f.type, code: f.json.code };
      },
      { quota },
    );
    expect(hasCode(second.error, 'ERR_RATE_LIMITED'), String(second.error)).toBe(true);
    expect(reply).toEqual({ type: F.error, code: 'ERR_RATE_LIMITED' });
    release();
    expect(hasCode((await first).error, 'ERR_CONNECTION_CLOSED')).toBe(true);
    // Once the first is over, the peer may sync again.
    const third = await againstVictim(victim, attacker, (a) => a.hello().then(() => {}), { quota });
    expect(hasCode(third.error, 'ERR_CONNECTION_CLOSED'), String(third.error)).toBe(true);
  });

  it('limits how often a peer may start a sync (token bucket on an injected clock)', () => {
    let now = 0;
    const quota = new SyncQuota({ syncBurst: 2, syncsPerHour: 60 }, () => now);
    quota.begin('p').end();
    quota.begin('p').end();
    expect(() => quota.begin('p')).toThrow(expect.objectContaining({ code: 'ERR_RATE_LIMITED' }));
    quota.begin('other').end(); // another peer has its own budget
    now += 60_000; // one sync per minute refills
    quota.begin('p').end();
    expect(() => quota.begin('p')).toThrow(expect.objectContaining({ code: 'ERR_RATE_LIMITED' }));
  });

  it('caps syncs running at once across all peers', () => {
    const quota = new SyncQuota({ totalConcurrent: 2 });
    const a = quota.begin('a');
    quota.begin('b');
    expect(() => quota.begin('c')).toThrow(expect.objectContaining({ code: 'ERR_RATE_LIMITED' }));
    a.end();
    a.end(); // ending twice frees one slot only
    quota.begin('c');
    expect(() => quota.begin('d')).toThrow(expect.objectContaining({ code: 'ERR_RATE_LIMITED' }));
  });

  it('refuses a peer past its pack-byte and entry budgets and writes nothing', async () => {
    for (const [limits, what] of [
      [{ bytesPerHour: 200 }, /pack data/],
      [{ entriesPerHour: 2 }, /entries/],
    ] as const) {
      const victim = await open('budget');
      const attacker = AgentKey.random();
      const entries = [1, 2, 3].map((i) =>
        signEntry(attacker, 'post', { text: `post ${i} ${'x'.repeat(100)}` }),
      );
      const { head, objects } = history(entries.map((e) => [entryTreePath(e.id), e.bytes]));
      const r = await againstVictim(
        victim,
        attacker,
        async (a) => {
          await a.hello();
          await a.ref(head);
          await a.read();
          await a.pack(rawPack(objects), { objects: objects.length, chunk: 128 });
          await a.read();
        },
        { quota: new SyncQuota(limits) },
      );
      expect(hasCode(r.error, 'ERR_RATE_LIMITED'), String(r.error)).toBe(true);
      expect((r.error as Error).message).toMatch(what);
      expect(await victim.head()).toBeNull();
    }
  });

  it('leaves honest syncs within the defaults untouched', async () => {
    const a = await open('ha');
    const b = await open('hb');
    await a.rememberMany(Array.from({ length: 50 }, (_, i) => ({ type: 'task' as const, content: `t${i}` })));
    for (let i = 0; i < 5; i++) {
      await b.remember({ type: 'task', content: `b${i}` });
      await syncPair(a, b);
    }
    expect(await a.recall()).toHaveLength(55);
    expect(await a.head()).toBe(await b.head());
  });
});
