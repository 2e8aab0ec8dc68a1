// A peer that stops sending in the middle of its pack and keeps the connection open (it vanished behind a
// silent circuit): the receiver's sync ends by its deadline with a typed error, nothing is half-applied (refs
// and object files unchanged, git fsck clean), and the next sync with a live peer completes. Real git repos,
// real sockets; only the relay between the two is ours, to make the stall.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MemoryStore } from '../../src/memory/store.js';
import { syncOverChannel } from '../../src/memory/sync/index.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { fsck, git, peerOf, socketPair, storeOpener } from '../memory/_helpers.js';

const open = storeOpener('stall');

function snapshot(s: MemoryStore): string {
  const list = (d: string): string[] => {
    try {
      return readdirSync(join(s.dir, d), { recursive: true }).map(String).sort();
    } catch {
      return [];
    }
  };
  return JSON.stringify([git(s.dir, 'for-each-ref'), list('objects'), list('refs')]);
}

const memories = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    type: 'observation' as const,
    content: `${tag} ${i}`,
    tags: [tag],
  }));

describe('peer stalls mid-pack', () => {
  it.each([1_000, 5_000, 20_000])(
    'after %d bytes: the sync ends by its deadline, nothing applied, the next sync completes',
    async (cut) => {
      const a = await open(`sa${cut}`);
      const b = await open(`sb${cut}`);
      for (let i = 0; i < 10; i++) await a.rememberMany(memories(`s${i}`, 20));
      const before = snapshot(b);
      // a ↔ relay ↔ b: the relay passes `cut` bytes from a, then nothing more, and closes nothing.
      const [ca, ra, doneA] = await socketPair();
      const [rb, cb, doneB] = await socketPair();
      let relayed = 0;
      ra.on('data', (d: Buffer) => {
        const room = cut - relayed;
        relayed += d.length;
        if (room > 0) rb.write(d.subarray(0, Math.min(room, d.length)));
      });
      rb.on('data', (d: Buffer) => ra.writable && ra.write(d));
      const deadlineMs = 3_000;
      const t0 = Date.now();
      const [ea, eb] = await Promise.all(
        [
          syncOverChannel(a, channelFromDuplex(ca), {
            role: 'initiator',
            peer: peerOf(b),
            timeoutMs: deadlineMs,
          }),
          syncOverChannel(b, channelFromDuplex(cb), {
            role: 'responder',
            peer: peerOf(a),
            timeoutMs: deadlineMs,
          }),
        ].map((p) =>
          p.then(
            () => null,
            (e: unknown) => e,
          ),
        ),
      );
      const ms = Date.now() - t0;
      doneA();
      doneB();
      console.log(
        `[reliability] sync stalled after ${cut} B: both sides ended after ${ms} ms (deadline ${deadlineMs} ms)`,
      );
      expect(eb).toMatchObject({ code: 'ERR_TIMEOUT' });
      expect(ea).toBeInstanceOf(Error);
      // Nothing half-applied: no ref moved, no object file left behind, and git agrees the repo is sound.
      expect(snapshot(b)).toBe(before);
      expect(fsck(b.dir).status).toBe(0);
      // Resumed on the next attempt, with a peer that answers.
      const [c1, c2, done] = await socketPair();
      try {
        const [rB] = await Promise.all([
          syncOverChannel(b, channelFromDuplex(c1), { role: 'initiator', peer: peerOf(a) }),
          syncOverChannel(a, channelFromDuplex(c2), { role: 'responder', peer: peerOf(b) }),
        ]);
        expect(rB.received).toBe(200);
      } finally {
        done();
      }
      expect(await b.head()).toBe(await a.head());
      expect(fsck(b.dir).status).toBe(0);
    },
    30_000,
  );
});
