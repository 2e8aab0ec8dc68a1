// Crash safety of the send path now that the outbox write runs beside the first attempt. A crash is simulated
// by copying an agent's config dir at the instant of interest (what the disk holds then) and starting a new
// agent on the copy; the original is stopped afterwards. Real sockets, real PQ sessions, real files.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeliveredEvent } from '../../src/agent/messaging.js';
import type { SignedMessage } from '../../src/agent/messaging-envelope.js';
import { Outbox, type OutboxWrite } from '../../src/agent/outbox.js';
import { AgentKey } from '../../src/identity/keys.js';
import {
  agentsPerTest,
  collect,
  type Directory,
  removeHome,
  startAgent,
  waitFor,
} from './messaging-helpers.js';

const { agent, cleanup } = agentsPerTest();

/** The config dir as it is on disk right now, copied to a fresh directory (a crash at this instant). */
function snapshot(home: string): string {
  const copy = mkdtempSync(join(tmpdir(), 'mmogit-crash-'));
  cpSync(home, copy, { recursive: true });
  return copy;
}

const outboxFiles = async (home: string) => readdir(join(home, 'outbox')).catch(() => [] as string[]);

describe('send(): outbox write beside the first attempt', () => {
  it('a message reported queued is on disk when send() answers: a crash then still delivers it once', async () => {
    const dir: Directory = new Map();
    const aKey = AgentKey.random();
    const bKey = AgentKey.random();
    const a = await agent(dir, { key: aKey });
    const res = await a.messenger.send(bKey.onion, 'queued before the crash', { timeoutMs: 500 });
    expect(res.status).toBe('queued');
    const crashed = snapshot(a.home); // nothing awaited in between: the state send() answered on
    expect(await outboxFiles(crashed)).toEqual([`${res.id}.json`]);
    await a.stop(); // the original goes away without delivering

    const b = await agent(dir, { key: bKey });
    const got = collect(b);
    const a2 = await agent(dir, { key: aKey, home: crashed });
    await waitFor(() => got.length === 1, 10_000, 'delivery from the restarted sender');
    expect(got[0]).toMatchObject({ id: res.id, text: 'queued before the crash', from: aKey.onion });
    await waitFor(async () => (await outboxFiles(crashed)).length === 0, 5_000, 'outbox emptied');
    expect(a2.messenger.pending()).toEqual([]);
  });

  it('an outbox write that finishes after the ack does not leave its file behind', async () => {
    const dir: Directory = new Map();
    // No grace: the write starts as the frame goes out (as it does when the ack is slower than the grace).
    const a = await agent(dir, {
      deps: { retry: { initialDelayMs: 50, maxDelayMs: 400, attemptTimeoutMs: 3_000, outboxGraceMs: 0 } },
    });
    const b = await agent(dir);
    const outbox = a.messenger.outbox;
    const realBegin = outbox.begin.bind(outbox);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const late: OutboxWrite[] = [];
    // A disk slower than the network: the write starts only after the ack and is past cancelling by then.
    outbox.begin = (signed: SignedMessage, queuedAt = Date.now()) => {
      const started = gate.then(() => {
        const w = realBegin(signed, queuedAt);
        late.push(w);
        return w;
      });
      return {
        item: { ...signed, queuedAt },
        done: started.then((w) => w.done),
        cancel() {},
      };
    };
    const got = collect(b);
    const res = await a.messenger.send(b.key.onion, 'fast network, slow disk');
    expect(res.status).toBe('delivered');
    expect(got.map((m) => m.id)).toEqual([res.id]);
    release();
    await waitFor(() => late.length === 1, 2_000, 'the late write');
    expect(await late[0]?.done).toBe(true); // the file did land…
    await waitFor(async () => (await outboxFiles(a.home)).length === 0, 2_000, 'late file removed');
    // …and is gone for good: nothing is re-sent later.
    await new Promise((r) => setTimeout(r, 300));
    expect(await outboxFiles(a.home)).toEqual([]);
    expect(a.messenger.pending()).toEqual([]);
    expect(got.length).toBe(1);
  });

  it('a message acked within the grace never starts an outbox write; a slower ack does', async () => {
    // Two senders, so that neither half depends on how fast a loaded machine acks: one whose grace (10 s) no
    // loopback ack comes near, one whose grace (150 ms) the receiver's held-back ack (2 s) always outlasts.
    const dir: Directory = new Map();
    const retry = { initialDelayMs: 50, maxDelayMs: 400, attemptTimeoutMs: 10_000 };
    const quick = await agent(dir, { deps: { retry: { ...retry, outboxGraceMs: 10_000 } } });
    const slowSender = await agent(dir, { deps: { retry: { ...retry, outboxGraceMs: 150 } } });
    const b = await agent(dir);
    const watch = (who: typeof quick) => {
      const outbox = who.messenger.outbox;
      const realBegin = outbox.begin.bind(outbox);
      const begun: string[] = [];
      outbox.begin = (signed: SignedMessage, queuedAt = Date.now()) => {
        begun.push(signed.message.id);
        return realBegin(signed, queuedAt);
      };
      return begun;
    };
    const quickBegun = watch(quick);
    const slowBegun = watch(slowSender);
    for (let i = 0; i < 5; i++) {
      expect((await quick.messenger.send(b.key.onion, `quick ${i}`)).status).toBe('delivered');
    }
    await new Promise((r) => setTimeout(r, 300)); // no write started late either
    expect(quickBegun).toEqual([]);
    expect(await outboxFiles(quick.home)).toEqual([]);
    // The receiver holds its acks back longer than the grace: the write starts, and is removed after the ack.
    const store = b.store;
    const realAppend = store.append.bind(store);
    store.append = async (record) => {
      await new Promise((r) => setTimeout(r, 2_000));
      return realAppend(record);
    };
    const slow = await slowSender.messenger.send(b.key.onion, 'slow ack');
    expect(slow.status).toBe('delivered');
    expect(slowBegun).toEqual([slow.id]);
    await waitFor(async () => (await outboxFiles(slowSender.home)).length === 0, 5_000, 'outbox empty');
  });

  it('a delivered message leaves no outbox file or temp file, and its sent copy is stored', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const b = await agent(dir);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await a.messenger.send(b.key.onion, `m${i}`);
      expect(r.status).toBe('delivered');
      ids.push(r.id);
    }
    await waitFor(async () => (await outboxFiles(a.home)).length === 0, 5_000, 'outbox empty');
    await waitFor(
      async () => (await a.store.list()).filter((r) => r.direction === 'out').length === 20,
      5_000,
      'sent copies',
    );
    const sent = (await a.store.list()).filter((r) => r.direction === 'out');
    expect(sent.map((r) => r.message.id).sort()).toEqual([...ids].sort());
    expect(sent.every((r) => r.ack?.ack.by === b.key.onion)).toBe(true);
  });

  it('when the outbox cannot be written and the peer is away, send() fails and nothing is retried', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    // The outbox directory is replaced by a file: every write there fails (also for root).
    await rm(join(a.home, 'outbox'), { recursive: true });
    await writeFile(join(a.home, 'outbox'), 'not a directory');
    const away = AgentKey.random();
    await expect(
      a.messenger.send(away.onion, 'nowhere to keep it', { timeoutMs: 300 }),
    ).rejects.toMatchObject({
      details: { status: 'failed' },
    });
    expect(a.messenger.pending()).toEqual([]);
    // A peer that acks does not need the outbox: delivered all the same.
    const b = await agent(dir);
    const got = collect(b);
    expect((await a.messenger.send(b.key.onion, 'acked without an outbox')).status).toBe('delivered');
    expect(got.map((m) => m.text)).toEqual(['acked without an outbox']);
  });

  it('sender crash right after the ack: a re-send is acked but not handed out again', async () => {
    const dir: Directory = new Map();
    const aKey = AgentKey.random();
    const a = await agent(dir, { key: aKey });
    const b = await agent(dir);
    const got = collect(b);
    // Keep the outbox file around at the ack (as if the archive step had not run yet) and crash there.
    let crashed: string | undefined;
    a.messenger.once('delivered', () => {
      crashed = snapshot(a.home);
    });
    const res = await a.messenger.send(b.key.onion, 'once only');
    expect(res.status).toBe('delivered');
    const home2 = crashed as string;
    cleanup.push(() => removeHome(home2));
    await a.stop();
    // The snapshot may hold the outbox write's temp file (the write was still running at the ack). Its writer
    // was this process; in a real crash it is a process that is gone, so the temp file gets a reaped pid.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    for (const name of await outboxFiles(home2)) {
      const tmp = /^(.+\.json\.tmp-)\d+(-.+)$/.exec(name);
      if (tmp) await rename(join(home2, 'outbox', name), join(home2, 'outbox', `${tmp[1]}${dead}${tmp[2]}`));
    }
    // Whatever the crash left (an outbox file if its write got that far, or its temp file), the restarted
    // sender retries the one and removes the other.
    const leftover = (await outboxFiles(home2)).filter((n) => !n.includes('.tmp-'));
    const a2 = await agent(dir, { key: aKey, home: home2 });
    await waitFor(async () => (await outboxFiles(home2)).length === 0, 30_000, 'restarted outbox drained');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.map((m) => m.id)).toEqual([res.id]);
    expect(a2.messenger.pending()).toEqual([]);
    expect(leftover.every((n) => n === `${res.id}.json`)).toBe(true);
  });

  it('receiver crash right after it acked: the message survives and is not handed out again', async () => {
    const dir: Directory = new Map();
    const bKey = AgentKey.random();
    const a = await agent(dir);
    const b = await startAgent(dir, { key: bKey });
    cleanup.push(() => removeHome(b.home));
    const got = collect(b);
    let crashed: string | undefined;
    // The ack was verified by the sender, so the receiver sent it: its disk must hold the message now.
    a.messenger.once('delivered', (e: DeliveredEvent) => {
      expect(e.ack.ack.by).toBe(bKey.onion);
      crashed = snapshot(b.home);
    });
    const res = await a.messenger.send(bKey.onion, 'acked, then the receiver crashed');
    expect(res.status).toBe('delivered');
    const home2 = crashed as string;
    await b.stop();
    const b2 = await agent(dir, { key: bKey, home: home2 });
    const got2 = collect(b2);
    expect((await b2.messenger.inbox()).map((m) => m.id)).toEqual([res.id]);
    // The sender re-sends the same signed message (e.g. it crashed before dropping it): acked, not re-emitted.
    // (The signed message as the receiver stored it.)
    const again = (await b2.store.list()).find((r) => r.message.id === res.id && r.direction === 'in');
    expect(again).toBeDefined();
    const aHome2 = await mkdtemp(join(tmpdir(), 'mmogit-crash-'));
    cleanup.push(() => removeHome(aHome2));
    const sig = again as SignedMessage;
    await new Outbox(join(aHome2, 'outbox')).put({ message: sig.message, sig: sig.sig });
    await a.stop();
    const a2 = await startAgent(dir, { key: a.key, home: aHome2 });
    cleanup.push(() => a2.stop());
    await waitFor(async () => (await outboxFiles(aHome2)).length === 0, 5_000, 're-send acked');
    expect(got.map((m) => m.id)).toEqual([res.id]);
    expect(got2).toEqual([]);
    expect((await b2.messenger.inbox()).map((m) => m.id)).toEqual([res.id]);
  });
});
