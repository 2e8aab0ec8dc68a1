import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppendLog } from '../../src/agent/append-log.js';
import { messageStoreFromMemory } from '../../src/agent/messaging-adapters.js';
import { signMessage } from '../../src/agent/messaging-envelope.js';
import type { AnyEnvelope } from '../../src/agent/messaging-envelope-v2.js';
import {
  DEFAULT_COPY_IDLE_MS,
  DEFAULT_COPY_MAX_DELAY_MS,
  JournaledMessageStore,
} from '../../src/agent/messaging-journal.js';
import { JsonlMessageStore, type StoredMessage } from '../../src/agent/messaging-store.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { heldWrites } from './messaging-helpers.js';

/** A stored record's text (these tests store version 1 text messages). */
const textOf = (r: { message: AnyEnvelope }): string =>
  r.message.v === 1 ? r.message.text : String(r.message.body);

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
    expect((await store.list()).map((r) => textOf(r))).toEqual(['one', 'two']);
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
    expect((await store.list()).map((r) => textOf(r)).sort()).toEqual(['a', 'b', 'c']);
    await store.flush?.();
    expect((await memory.recall({ kind: 'message' })).length).toBe(3);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    await store.close?.();
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
    expect((await failing.list()).map((r) => textOf(r))).toEqual(['kept by the journal']);
    await failing.close?.();
    // A torn line from a crash mid-append is skipped.
    const plain = new JsonlMessageStore(journalPath);
    await plain.append(rec('also journaled'));
    await plain.close();
    await import('node:fs/promises').then((fs) => fs.appendFile(journalPath, '{"direction":"in","mess'));

    const memory = await MemoryStore.open(join(dir, 'memory'), me);
    const store = new JournaledMessageStore(messageStoreFromMemory(memory), journalPath);
    expect((await store.list()).map((r) => textOf(r))).toEqual(['kept by the journal', 'also journaled']);
    expect((await memory.recall({ kind: 'message' })).length).toBe(2);
    expect(await readFile(journalPath, 'utf8')).toBe('');
    // Recovery is idempotent: a second instance finds nothing to copy and no duplicates appear.
    const again = new JournaledMessageStore(messageStoreFromMemory(memory), journalPath);
    expect((await again.list()).length).toBe(2);
    await store.close();
    await again.close();
    await memory.close();
  });
});

describe('journal file (AppendLog)', () => {
  it('records appended together are all durable, in call order, and the file is 0600', async () => {
    const path = join(dir, 'j', 'log');
    const log = new AppendLog(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(`${i}\n`)));
    expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await log.close();
    await log.append('after reopen\n'); // a closed log reopens on the next append
    expect((await readFile(path, 'utf8')).endsWith('49\nafter reopen\n')).toBe(true);
    await log.close();
  });

  it('group commit: appends made while a write is on the disk go in one next write, each resolving only after it returned', async () => {
    const { open, writes } = heldWrites();
    const log = new AppendLog(join(dir, 'gc', 'log'), 0o600, open);
    const done: number[] = [];
    const first = log.append('0\n').then(() => done.push(0));
    await vi.waitFor(() => expect(writes.length).toBe(1));
    const rest = Array.from({ length: 49 }, (_, i) => log.append(`${i + 1}\n`).then(() => done.push(i + 1)));
    writes[0]?.release();
    await first;
    await vi.waitFor(() => expect(writes.length).toBe(2));
    expect(writes[1]?.text).toBe(Array.from({ length: 49 }, (_, i) => `${i + 1}\n`).join(''));
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toEqual([0]);
    writes[1]?.release();
    await Promise.all(rest);
    expect(writes.length).toBe(2);
    expect(done).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await log.close();
  });

  it('a truncation keeps its place among appends: earlier ones are cut, later ones kept', async () => {
    const path = join(dir, 'log');
    const log = new AppendLog(path);
    const ops = [log.append('a\n'), log.append('b\n'), log.truncate(), log.append('c\n'), log.append('d\n')];
    await Promise.all(ops);
    expect(await readFile(path, 'utf8')).toBe('c\nd\n');
    await log.close();
  });

  it('a failed write rejects its own appends only', async () => {
    const log = new AppendLog(join(dir, 'no-such-dir-is-a-file', 'log'));
    await writeFile(join(dir, 'no-such-dir-is-a-file'), 'x');
    await expect(log.append('lost\n')).rejects.toMatchObject({
      code: expect.stringMatching(/EEXIST|ENOTDIR/),
    });
    const ok = new AppendLog(join(dir, 'ok'));
    await ok.append('kept\n');
    expect(await readFile(join(dir, 'ok'), 'utf8')).toBe('kept\n');
    await ok.close();
  });
});

describe('journaled store: batched copies and crashes', () => {
  it('copies arrive in batches and the journal is emptied only once everything is backed', async () => {
    const backing = new JsonlMessageStore(join(dir, 'backing.jsonl'));
    const journalPath = join(dir, 'messages.journal');
    const store = new JournaledMessageStore(backing, journalPath, undefined, { idleMs: 0, maxBatch: 4 });
    // Appends keep coming while copies and truncations run: none may be lost from both files.
    const records: StoredMessage[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 7 }, (_, i) => rec(`r${round}.${i}`));
      records.push(...batch);
      await Promise.all(batch.map((r) => store.append(r)));
      // Crash now: a new instance on the same files must see every record appended so far, once.
      const after = new JournaledMessageStore(new JsonlMessageStore(join(dir, 'backing.jsonl')), journalPath);
      const seen = (await after.list()).map((r) => textOf(r));
      expect(new Set(seen)).toEqual(new Set(records.map((r) => textOf(r))));
      await after.close();
    }
    await store.close();
    expect((await backing.list()).length).toBeGreaterThanOrEqual(records.length);
    expect(new Set((await backing.list()).map((r) => textOf(r))).size).toBe(records.length);
    expect(await readFile(journalPath, 'utf8')).toBe('');
  });

  it('with the default policy a burst is copied as one batch after the journal goes quiet', async () => {
    const backing = new JsonlMessageStore(join(dir, 'backing.jsonl'));
    let copied = 0;
    const counting = {
      append: (r: StoredMessage) => {
        copied++;
        return backing.append(r);
      },
      list: () => backing.list(),
    };
    // Only the copy timer and the clock are faked: the journal's file I/O stays real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const store = new JournaledMessageStore(counting, join(dir, 'messages.journal'));
      for (let i = 0; i < 10; i++) {
        await store.append(rec(`burst ${i}`));
        // Records keep coming faster than the idle time: nothing is copied meanwhile.
        vi.advanceTimersByTime(DEFAULT_COPY_IDLE_MS - 1);
      }
      expect(copied).toBe(0);
      expect((await store.list()).length).toBe(10); // but listed (from the journal)
      vi.advanceTimersByTime(1);
      // The journal went quiet: the whole burst is handed over in that one timer callback (one batch).
      expect(copied).toBe(10);
      vi.useRealTimers();
      await store.close();
      expect((await backing.list()).length).toBe(10);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a steady trickle is copied at the latest the maximum delay after its first record', async () => {
    const backing = new JsonlMessageStore(join(dir, 'backing.jsonl'));
    let copied = 0;
    const counting = {
      append: (r: StoredMessage) => {
        copied++;
        return backing.append(r);
      },
      list: () => backing.list(),
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const store = new JournaledMessageStore(counting, join(dir, 'messages.journal'));
      const step = DEFAULT_COPY_IDLE_MS - 10;
      let elapsed = 0;
      let sent = 0;
      while (elapsed + step < DEFAULT_COPY_MAX_DELAY_MS) {
        await store.append(rec(`trickle ${sent++}`));
        vi.advanceTimersByTime(step);
        elapsed += step;
      }
      expect(copied).toBe(0);
      await store.append(rec(`trickle ${sent++}`));
      vi.advanceTimersByTime(DEFAULT_COPY_MAX_DELAY_MS - elapsed);
      expect(copied).toBe(sent);
      vi.useRealTimers();
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
