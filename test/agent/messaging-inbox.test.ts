// The inbox read through the message index (src/agent/messaging-inbox.ts): the same answers as the full listing
// it replaces, for every filter, while reading only the records it returns. Real git memory stores and files.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { messageStoreFromMemory } from '../../src/agent/messaging-adapters.js';
import { signMessage } from '../../src/agent/messaging-envelope.js';
import { signMessageV2 } from '../../src/agent/messaging-envelope-v2.js';
import { JournaledMessageStore } from '../../src/agent/messaging-journal.js';
import type { MessageStore, StoredMessage } from '../../src/agent/messaging-store.js';
import type { InboxFilter, ReceivedMessage } from '../../src/agent/messaging-types.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { agentsPerTest, type Directory } from './messaging-helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-msginbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const me = AgentKey.random();
const peers = [AgentKey.random(), AgentKey.random(), AgentKey.random()];
const TYPES = ['message', 'task-proposal', 'status-update'];
const N = 150;

/** N received messages from 3 peers (v1 and v2, three types, threads with replies), 2 sent, 1 received twice. */
function records(): { all: StoredMessage[]; thread: string; middle: StoredMessage } {
  let at = 1_700_000_000_000;
  const all: StoredMessage[] = [];
  const threads: string[] = [];
  for (let i = 0; i < N; i++) {
    const from = peers[i % 3] as AgentKey;
    const signed =
      i % 5 === 0
        ? signMessage(from, me.onion, `v1 number ${i}`)
        : signMessageV2(from, me.onion, {
            type: TYPES[i % 3] as string,
            body: { i },
            ...(threads.length > 0 && i % 2 === 0
              ? {
                  replyTo: threads[i % threads.length] as string,
                  thread: threads[i % threads.length] as string,
                }
              : {}),
          });
    if (signed.message.v === 2 && signed.message.replyTo === undefined) threads.push(signed.message.id);
    all.push({ direction: 'in', ...signed, at: at++ });
    if (i % 60 === 0) all.push({ direction: 'out', ...signMessage(me, from.onion, `sent ${i}`), at: at++ });
  }
  const twice = all[10] as StoredMessage;
  all.push({ ...twice, at: at++ });
  const thread = all.find((r) => r.message.v === 2 && r.message.replyTo !== undefined)?.message;
  return {
    all,
    thread: thread?.v === 2 ? thread.thread : '',
    middle: all[Math.floor(all.length / 2)] as StoredMessage,
  };
}

const paths = () => ({ journal: join(dir, 'messages.journal'), index: join(dir, 'messages.index') });

async function stored(): Promise<{ memory: MemoryStore; thread: string; cursor: string }> {
  const memory = await MemoryStore.open(join(dir, 'memory'), me);
  const p = paths();
  const store = messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index });
  const { all, thread, middle } = records();
  for (let i = 0; i < all.length; i += 64)
    await Promise.all(all.slice(i, i + 64).map((r) => store.append(r)));
  await store.close?.();
  return { memory, thread, cursor: `m1.${middle.at}.${middle.message.id}` };
}

function filters(thread: string, cursor: string): InboxFilter[] {
  const from = peers[1]?.onion as string;
  return [
    {},
    { limit: 1 },
    { limit: 7 },
    { limit: 100_000 },
    { from },
    { from, limit: 4 },
    { type: 'task-proposal' },
    { type: 'task-proposal', limit: 3 },
    { type: 'message', limit: 20 },
    { thread },
    { thread, limit: 2 },
    { since: cursor },
    { since: cursor, from, limit: 5 },
    { since: cursor, type: 'status-update' },
    { type: 'no-such-type' },
    // `first`: the oldest that many (after `since`), the pages a follower reads.
    { first: 1 },
    { first: 7 },
    { first: 100_000 },
    { from, first: 4 },
    { type: 'task-proposal', first: 3 },
    { since: cursor, first: 5 },
    { since: cursor, type: 'status-update', first: 2 },
  ];
}

describe('inbox from the index', () => {
  const { agent } = agentsPerTest({ keepGivenHome: true });

  async function answers(store: MessageStore, fs: InboxFilter[]): Promise<ReceivedMessage[][]> {
    const a = await agent(new Map() as Directory, { key: me, home: dir, deps: { store } });
    const out: ReceivedMessage[][] = [];
    for (const f of fs) out.push(await a.messenger.inbox(f));
    await a.stop();
    return out;
  }

  it('answers every filter as the full listing does, reading only what it returns', async () => {
    const { memory, thread, cursor } = await stored();
    try {
      const fs = filters(thread, cursor);
      const listed = await answers(messageStoreFromMemory(memory), fs);
      const p = paths();
      const recall = vi.spyOn(memory, 'recall');
      const byId = vi.spyOn(memory, 'recallByIds');
      const indexed = await answers(
        messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index }),
        fs,
      );
      expect(indexed).toEqual(listed);
      expect(recall).not.toHaveBeenCalled();
      // The answers are real: all N distinct received messages, verified; filters cut them.
      expect(listed[0]).toHaveLength(N);
      expect(listed[0]?.every((m) => m.verified)).toBe(true);
      expect(listed.map((l) => l.length)).toEqual([
        N,
        1,
        7,
        N,
        N / 3,
        4,
        40,
        3,
        20,
        expect.any(Number),
        2,
        expect.any(Number),
        5,
        expect.any(Number),
        0,
        1,
        7,
        N,
        4,
        3,
        5,
        2,
      ]);
      expect(listed[9]?.length).toBeGreaterThan(2);
      // The oldest of the same lists the newest-`limit` ones end.
      expect(listed[15]).toEqual(listed[0]?.slice(0, 1));
      expect(listed[16]).toEqual(listed[0]?.slice(0, 7));
      expect(listed[19]).toEqual(listed[6]?.slice(0, 3));
      expect(listed[20]).toEqual(listed[11]?.slice(0, 5));
      expect(listed[21]).toEqual(listed[13]?.slice(0, 2));
      // A limit without a type filter reads that many records; `{}` and the big limit read all N. So does `first`.
      const reads = byId.mock.calls.map((c) => c[0].length);
      expect(reads.slice(0, 3)).toEqual([N, 1, 7]);
      expect(reads.slice(-7, -4)).toEqual([1, 7, N]);
    } finally {
      await memory.close();
    }
  });

  it('an index written before entry addresses (or with a bad one) falls back to the listing, same answers', async () => {
    const { memory, thread, cursor } = await stored();
    try {
      const fs = filters(thread, cursor);
      const listed = await answers(messageStoreFromMemory(memory), fs);
      const p = paths();
      const text = await readFile(p.index, 'utf8');
      expect(text).toMatch(/"e":"[0-9a-f]{64}"/);
      let n = 0;
      // Every other line loses its address, the others get one that is not an entry id.
      await writeFile(
        p.index,
        text.replace(/,"e":"[0-9a-f]{64}"/g, () => (n++ % 2 === 0 ? '' : ',"e":"../x"')),
      );
      const recall = vi.spyOn(memory, 'recall');
      const indexed = await answers(
        messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index }),
        fs,
      );
      expect(indexed).toEqual(listed);
      expect(recall).toHaveBeenCalled();
    } finally {
      await memory.close();
    }
  });

  it('a message still in the journal (not yet copied into git) is in the inbox', async () => {
    const { memory } = await stored();
    try {
      const p = paths();
      const store = new JournaledMessageStore(messageStoreFromMemory(memory), p.journal, undefined, {
        indexPath: p.index,
        idleMs: 60_000,
        maxDelayMs: 60_000,
      });
      const a = await agent(new Map() as Directory, { key: me, home: dir, deps: { store } });
      const late = signMessageV2(peers[2] as AgentKey, me.onion, { type: 'status-update', body: 'late' });
      await store.append({ direction: 'in', ...late, at: 1_800_000_000_000 });
      const byId = vi.spyOn(memory, 'recallByIds');
      expect((await a.messenger.inbox({ limit: 2 })).map((m) => m.body)).toEqual([{ i: N - 1 }, 'late']);
      expect(byId.mock.calls.map((c) => c[0].length)).toEqual([1]);
      await a.stop();
    } finally {
      await memory.close();
    }
  });
});
