import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageStoreFromMemory } from '../../src/agent/messaging-adapters.js';
import { signMessage } from '../../src/agent/messaging-envelope.js';
import {
  JournaledMessageStore,
  JsonlMessageStore,
  type StoredMessage,
} from '../../src/agent/messaging-store.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-msgstore-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const me = AgentKey.random();
const peer = AgentKey.random();
let clock = Date.now();
const rec = (text: string): StoredMessage => ({
  direction: 'in',
  ...signMessage(peer, me.onion, text),
  at: clock++,
});

describe('message stores', () => {
  it('git memory store: messages are private entries signed by the agent, listed oldest first', async () => {
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const store = messageStoreFromMemory(memory);
    const [a, b] = [rec('one'), rec('two')];
    await store.append(a);
    await store.append(b);
    expect((await store.list()).map((r) => r.message.text)).toEqual(['one', 'two']);
    const entries = await memory.recall({ kind: 'message' });
    expect(entries.every((e) => e.verified && e.visibility === 'private' && e.author === me.onion)).toBe(
      true,
    );
    expect(await memory.head()).toBeNull();
    await memory.close();
  });

  it('journal in front of git: durable at once, copied to git in the background, journal emptied', async () => {
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const journalPath = join(dir, 'messages.journal');
    const store = messageStoreFromMemory(memory, { journalPath });
    const records = ['a', 'b', 'c'].map(rec);
    await Promise.all(records.map((r) => store.append(r)));
    expect((await store.list()).map((r) => r.message.text).sort()).toEqual(['a', 'b', 'c']);
    await store.flush?.();
    expect((await memory.recall({ kind: 'message' })).length).toBe(3);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    await memory.close();
  });

  it('records that only reached the journal (crash, failed git write) are copied into git on the next open', async () => {
    const journalPath = join(dir, 'messages.journal');
    // A store whose git side fails: a closed MemoryStore refuses writes.
    const closed = await MemoryStore.open(join(dir, 'memory'), me);
    await closed.close();
    const errors: unknown[] = [];
    const failing = messageStoreFromMemory(closed, { journalPath, onError: (e) => errors.push(e) });
    await failing.append(rec('kept by the journal'));
    await failing.flush?.();
    expect(errors.length).toBe(1);
    expect((await failing.list()).map((r) => r.message.text)).toEqual(['kept by the journal']);
    // A torn line from a crash mid-append is skipped.
    await new JsonlMessageStore(journalPath).append(rec('also journaled'));
    await import('node:fs/promises').then((fs) => fs.appendFile(journalPath, '{"direction":"in","mess'));

    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const store = new JournaledMessageStore(messageStoreFromMemory(memory), journalPath);
    expect((await store.list()).map((r) => r.message.text)).toEqual([
      'kept by the journal',
      'also journaled',
    ]);
    expect((await memory.recall({ kind: 'message' })).length).toBe(2);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    // Recovery is idempotent: a second instance finds nothing to copy and no duplicates appear.
    const again = new JournaledMessageStore(messageStoreFromMemory(memory), journalPath);
    expect((await again.list()).length).toBe(2);
    await memory.close();
  });
});
