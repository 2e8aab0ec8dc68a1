// The message index: a messenger's start reads it (not every stored message), and the journal and the index
// together keep exactly-once across crashes. Real git memory stores and real files; crashes are made by writing
// what the disk would hold at the instant of interest.
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageStoreFromMemory } from '../../src/agent/messaging-adapters.js';
import { type SignedMessage, signMessage } from '../../src/agent/messaging-envelope.js';
import { MESSAGE_INDEX_HEADER, MessageIndex } from '../../src/agent/messaging-index.js';
import { JournaledMessageStore } from '../../src/agent/messaging-journal.js';
import {
  JsonlMessageStore,
  type MessageStore,
  type StoredMessage,
  storedMessageKey,
} from '../../src/agent/messaging-store.js';
import type { ReceivedMessage } from '../../src/agent/messaging-types.js';
import { Outbox } from '../../src/agent/outbox.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { agentsPerTest, collect, type Directory, waitFor } from './messaging-helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-msgindex-'));
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

/** The git message store, counting its full listings (what the index exists to avoid). */
function counted(memory: MemoryStore): { store: MessageStore; lists: () => number } {
  const git = messageStoreFromMemory(memory);
  let n = 0;
  return {
    store: {
      append: (r) => git.append(r),
      list: () => {
        n++;
        return git.list();
      },
    },
    lists: () => n,
  };
}

const keysOf = (xs: { direction: string; from: string; id: string }[]) =>
  xs.map((k) => `${k.direction}/${k.from}/${k.id}`).sort();

describe('message index', () => {
  it('a reopened store knows every record from the index and the journal, listing nothing', async () => {
    const journalPath = join(dir, 'messages.journal');
    const indexPath = join(dir, 'messages.index');
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const first = new JournaledMessageStore(counted(memory).store, journalPath, undefined, { indexPath });
    const records = ['a', 'b', 'c', 'd'].map(rec);
    await Promise.all(records.map((r) => first.append(r)));
    await first.close();
    expect((await stat(indexPath)).mode & 0o777).toBe(0o600);
    expect((await readFile(indexPath, 'utf8')).split('\n')[0]).toBe(JSON.stringify(MESSAGE_INDEX_HEADER));

    const c = counted(memory);
    const second = new JournaledMessageStore(c.store, journalPath, undefined, { indexPath });
    const known = await second.known();
    expect(keysOf(known)).toEqual(records.map(storedMessageKey).sort());
    expect(known.every((k) => k.thread === k.id && records.some((r) => r.at === k.at))).toBe(true);
    expect(c.lists()).toBe(0);
    // One appended after the reopen and not yet copied is known too (from the journal).
    const late = rec('late');
    await second.append(late);
    expect(keysOf(await second.known())).toContain(storedMessageKey(late));
    expect(c.lists()).toBe(0);
    await second.close();
    await memory.close();
  });

  it('a store without an index (an older agent) builds it from one full listing, then never lists again', async () => {
    const journalPath = join(dir, 'messages.journal');
    const indexPath = join(dir, 'messages.index');
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const old = messageStoreFromMemory(memory, { journalPath });
    const records = ['x', 'y'].map(rec);
    for (const r of records) await old.append(r);
    await old.close?.();

    const c1 = counted(memory);
    const s1 = new JournaledMessageStore(c1.store, journalPath, undefined, { indexPath });
    expect(keysOf(await s1.known())).toEqual(records.map(storedMessageKey).sort());
    expect(c1.lists()).toBe(1);
    await s1.close();
    const c2 = counted(memory);
    const s2 = new JournaledMessageStore(c2.store, journalPath, undefined, { indexPath });
    expect(keysOf(await s2.known())).toEqual(records.map(storedMessageKey).sort());
    expect(c2.lists()).toBe(0);
    await s2.close();
    await memory.close();
  });

  it('a file that is not an index is rebuilt, never trusted; a torn line is skipped', async () => {
    const journalPath = join(dir, 'messages.journal');
    const indexPath = join(dir, 'messages.index');
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const s1 = new JournaledMessageStore(counted(memory).store, journalPath, undefined, { indexPath });
    const records = ['1', '2', '3'].map(rec);
    await Promise.all(records.map((r) => s1.append(r)));
    await s1.close();

    await writeFile(indexPath, '{"d":"in","f":"x","i":"y","t":"y","a":1}\n');
    const c = counted(memory);
    const s2 = new JournaledMessageStore(c.store, journalPath, undefined, { indexPath });
    expect(keysOf(await s2.known())).toEqual(records.map(storedMessageKey).sort());
    expect(c.lists()).toBe(1);
    await s2.close();

    await appendFile(indexPath, '\n{"d":"in","f":"');
    const loaded = await new MessageIndex(indexPath).load();
    expect(loaded?.skipped).toBe(1);
    expect(keysOf(loaded?.records ?? [])).toEqual(records.map(storedMessageKey).sort());
    await memory.close();
  });

  it('a crash after the git write but before the index write: the journal still names the record, restored once', async () => {
    const journalPath = join(dir, 'messages.journal');
    const indexPath = join(dir, 'messages.index');
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const s1 = new JournaledMessageStore(counted(memory).store, journalPath, undefined, { indexPath });
    const before = rec('indexed');
    await s1.append(before);
    await s1.close();
    // What the disk holds at the crash: the record journaled and in git, its index line not written (or torn).
    const crashed = rec('in git, not indexed');
    const journal = new JsonlMessageStore(journalPath);
    await journal.append(crashed);
    await journal.close();
    await messageStoreFromMemory(memory).append(crashed);
    await appendFile(indexPath, '\n{"d":"in","f":"');
    expect((await memory.recall({ kind: 'message' })).length).toBe(2);

    const c = counted(memory);
    const s2 = new JournaledMessageStore(c.store, journalPath, undefined, { indexPath });
    expect(keysOf(await s2.known())).toEqual([before, crashed].map(storedMessageKey).sort());
    expect(c.lists()).toBe(0);
    // Appending it to git again changed nothing (an entry's id is the hash of its bytes): still two entries.
    expect((await memory.recall({ kind: 'message' })).length).toBe(2);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    const reloaded = await new MessageIndex(indexPath).load();
    expect(keysOf(reloaded?.records ?? [])).toEqual([before, crashed].map(storedMessageKey).sort());
    await s2.close();
    await memory.close();
  });

  it('when the index cannot be written the journal is kept, and the next start indexes what it holds', async () => {
    const journalPath = join(dir, 'messages.journal');
    const indexPath = join(dir, 'messages.index');
    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const errors: unknown[] = [];
    const s1 = new JournaledMessageStore(counted(memory).store, journalPath, (e) => errors.push(e), {
      indexPath,
    });
    await s1.recover();
    // The index's path turns into a directory: its next append fails (EISDIR), whoever runs the test.
    await rename(indexPath, `${indexPath}.aside`);
    await mkdir(indexPath);
    const r = rec('not indexable');
    await s1.append(r);
    await s1.flush();
    expect(errors.length).toBe(1);
    expect((await memory.recall({ kind: 'message' })).length).toBe(1);
    expect((await new JsonlMessageStore(journalPath).list()).map(storedMessageKey)).toEqual([
      storedMessageKey(r),
    ]);
    await s1.close();

    await rmdir(indexPath);
    await rename(`${indexPath}.aside`, indexPath);
    const c = counted(memory);
    const s2 = new JournaledMessageStore(c.store, journalPath, undefined, { indexPath });
    expect(keysOf(await s2.known())).toEqual([storedMessageKey(r)]);
    expect(c.lists()).toBe(0);
    expect((await memory.recall({ kind: 'message' })).length).toBe(1);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    await s2.close();
    await memory.close();
  });
});

describe('messenger start from the index', () => {
  const { agent } = agentsPerTest({ keepGivenHome: true });

  it('after a restart, a re-sent message is not handed out again and a reply joins its thread, with no listing', async () => {
    const directory: Directory = new Map();
    const bKey = AgentKey.random();
    const home = await mkdtemp(join(tmpdir(), 'mmogit-msgindex-b-'));
    const homes = [home];
    const memory = await MemoryStore.open(join(home, 'memory'), bKey);
    const storeFor = (c: ReturnType<typeof counted>) =>
      new JournaledMessageStore(c.store, join(home, 'messages.journal'), undefined, {
        indexPath: join(home, 'messages.index'),
      });
    try {
      const a = await agent(directory);
      const c1 = counted(memory);
      const b = await agent(directory, { key: bKey, home, deps: { store: storeFor(c1) } });
      const got: ReceivedMessage[] = collect(b);
      const first = await a.messenger.send(bKey.onion, 'starts a thread');
      const second = await a.messenger.send(bKey.onion, { text: 'in it', replyTo: first.id });
      expect([first.status, second.status]).toEqual(['delivered', 'delivered']);
      await waitFor(() => got.length === 2, 5_000, 'both received');
      await b.stop();

      const c2 = counted(memory);
      const b2 = await agent(directory, { key: bKey, home, deps: { store: storeFor(c2) } });
      expect(c2.lists()).toBe(0);
      const got2 = collect(b2);
      // The sender re-sends the same signed message (it crashed before dropping it): acked, not handed out.
      const again = (await c2.store.list()).find((r) => r.message.id === second.id && r.direction === 'in');
      expect(again).toBeDefined();
      const aHome2 = await mkdtemp(join(tmpdir(), 'mmogit-msgindex-a-'));
      homes.push(aHome2);
      const signed = again as StoredMessage;
      await new Outbox(join(aHome2, 'outbox')).put({
        message: signed.message,
        sig: signed.sig,
      } as SignedMessage);
      await a.stop();
      const a2 = await agent(directory, { key: a.key, home: aHome2 });
      await waitFor(async () => (await readdir(join(aHome2, 'outbox'))).length === 0, 5_000, 're-send acked');
      expect(got2).toEqual([]);
      expect(got.map((m) => m.id)).toEqual([first.id, second.id]);
      const reply = await b2.messenger.send(a2.key.onion, { text: 'answer', replyTo: second.id });
      expect(reply.status).toBe('delivered');
      // The receiver sees the thread the restarted b took from its index (the thread's first message, not `second`).
      await waitFor(async () => (await a2.messenger.inbox()).some((m) => m.id === reply.id), 5_000, 'reply');
      expect((await a2.messenger.inbox()).find((m) => m.id === reply.id)?.thread).toBe(first.id);
    } finally {
      await memory.close();
      for (const h of homes) await rm(h, { recursive: true, force: true });
    }
  });
});
