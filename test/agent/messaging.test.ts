import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DeliveredEvent, MESSAGE_PROTOCOL, type QueuedEvent } from '../../src/agent/messaging.js';
import { JsonlMessageStore, type MessageStore } from '../../src/agent/messaging-store.js';
import { AgentKey } from '../../src/identity/keys.js';
import {
  agentsPerTest,
  collect,
  type Directory,
  heldWrites,
  recordsIn,
  removeHome,
  startAgent,
  waitFor,
} from './messaging-helpers.js';

const { agent, cleanup } = agentsPerTest({ keepGivenHome: true });

describe('Messenger between two agents (loopback, real PQ sessions)', () => {
  it('delivers a signed message, gets a verified ack, stores both sides and empties the outbox', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const b = await agent(dir);
    const got = collect(b);
    const delivered: DeliveredEvent[] = [];
    a.messenger.on('delivered', (e: DeliveredEvent) => delivered.push(e));

    const res = await a.messenger.send(b.key.onion, 'hello from a ✓');
    expect(res.status).toBe('delivered');
    expect(res.id).toMatch(/^[0-9a-f]{32}$/);
    expect(got).toEqual([
      {
        id: res.id,
        from: a.key.onion,
        text: 'hello from a ✓',
        timestamp: expect.any(Number),
        verified: true,
        v: 2,
        type: 'message',
        body: 'hello from a ✓',
        thread: res.id,
        receivedAt: expect.any(Number),
        cursor: expect.stringMatching(/^m1\.\d+\.[0-9a-f]{32}$/),
      },
    ]);
    expect(delivered.map((d) => [d.id, d.ack.ack.by])).toEqual([[res.id, b.key.onion]]);

    const inbox = await b.messenger.inbox();
    expect(inbox).toEqual(got);
    // The sent copy is stored (and the outbox entry dropped) right after the ack, off the round trip.
    // An ack within the outbox grace means no outbox file was ever written, so an empty outbox alone does not say
    // the sent copy is stored yet: wait for both (a Node 24 CI run read the store before the write finished).
    await waitFor(async () => (await readdir(join(a.home, 'outbox'))).length === 0, 2_000, 'outbox emptied');
    await waitFor(
      async () => (await a.store.list()).some((r) => r.direction === 'out'),
      2_000,
      'sent copy stored',
    );
    const sent = (await a.store.list()).filter((r) => r.direction === 'out');
    expect(sent.map((r) => [r.message.id, r.ack?.ack.by])).toEqual([[res.id, b.key.onion]]);
    expect(await a.messenger.inbox()).toEqual([]);
  });

  it('answers delivered before it journals the sent copy, which follows on the next turn of the loop', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const b = await agent(dir);
    const outAppends: string[] = [];
    const append = a.store.append.bind(a.store);
    a.store.append = (record) => {
      if (record.direction === 'out') outAppends.push(record.message.id);
      return append(record);
    };
    const res = await a.messenger.send(b.key.onion, 'answered first');
    expect(res.status).toBe('delivered');
    // At the answer the sent copy's record is not even built: that work runs while the next send is on the wire.
    expect(outAppends).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(outAppends).toEqual([res.id]);
    await waitFor(async () => (await a.store.list()).some((r) => r.direction === 'out'), 2_000, 'sent copy');
  });

  it('answers in both directions over one session, keeps order, and pings with the peer identity', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const b = await agent(dir);
    const gotA = collect(a);
    const gotB = collect(b);
    for (let i = 0; i < 5; i++) {
      expect((await a.messenger.send(b.key.onion, `a${i}`)).status).toBe('delivered');
      expect((await b.messenger.send(a.key.onion, `b${i}`)).status).toBe('delivered');
    }
    expect(gotB.map((m) => m.text)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    expect(gotA.map((m) => m.text)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    // b answered over the stream a opened: only one TCP connection between them.
    expect(a.node.sockets.size + b.node.sockets.size).toBe(2);

    const ping = await a.messenger.ping(b.key.onion);
    expect(ping.peer).toEqual({ onion: b.key.onion, pubkey: b.key.publicKeyHex });
    expect(ping.transport).toBe('direct');
    expect(ping.suite).toBe('hybrid-x25519-mlkem768');
    expect(ping.reused).toBe(true);
    expect(ping.rttMs).toBeGreaterThan(0);
    const fresh = await a.messenger.ping(b.key.onion, { fresh: true });
    expect(fresh.reused).toBe(false);
    expect(fresh.handshakeMs).toBeGreaterThan(0);
  });

  it('pipelines sends to one peer: all are written before the first ack, stored once each, in call order', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    // The receiver's store holds every write until the gate opens: no ack can leave before that, so every
    // message reaching the store meanwhile was sent while earlier ones still waited for their acks.
    const gateHome = await mkdtemp(join(tmpdir(), 'mmogit-gate-'));
    cleanup.push(() => removeHome(gateHome));
    const inner = new JsonlMessageStore(join(gateHome, 'm.jsonl'));
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    let started = 0;
    const store: MessageStore = {
      append: async (r) => {
        started += 1;
        await gate;
        await inner.append(r);
      },
      list: () => inner.list(),
    };
    const b = await agent(dir, { deps: { store } });
    const got = collect(b);
    const texts = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const sends = Promise.all(texts.map((t) => a.messenger.send(b.key.onion, t)));
    await waitFor(() => started === texts.length, 10_000, 'all 20 messages at the receiver’s store');
    open();
    expect((await sends).map((r) => r.status)).toEqual(texts.map(() => 'delivered'));
    expect(got.map((m) => m.text)).toEqual(texts);
    expect((await inner.list()).map((r) => r.message.v === 2 && r.message.body)).toEqual(texts);
  });

  it('group commit: messages arriving while a journal write is on the disk share the next write; no ack before its own write returned', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const gateHome = await mkdtemp(join(tmpdir(), 'mmogit-gc-'));
    cleanup.push(() => removeHome(gateHome));
    const { open, writes } = heldWrites();
    const inner = new JsonlMessageStore(join(gateHome, 'm.jsonl'), { open });
    let appended = 0;
    const store: MessageStore = {
      append: (r) => {
        appended += 1;
        return inner.append(r);
      },
      list: () => inner.list(),
      close: () => inner.close(),
    };
    const b = await agent(dir, { deps: { store } });
    const delivered: string[] = [];
    a.messenger.on('delivered', (e: DeliveredEvent) => delivered.push(e.id));
    const texts = Array.from({ length: 20 }, (_, i) => `g${i}`);
    const sends = Promise.all(texts.map((t) => a.messenger.send(b.key.onion, t)));
    // The first message's write is on the (held) disk; the other 19 reach the store meanwhile.
    await waitFor(() => writes.length === 1 && appended === texts.length, 10_000, 'all 20 at the store');
    expect(delivered).toEqual([]);
    writes[0]?.release();
    // Its ack may leave now; the 19 went into one write, and none of them is acked while it is held.
    await waitFor(() => writes.length === 2 && delivered.length === 1, 10_000, 'first ack, second write');
    expect(recordsIn(writes[0] as (typeof writes)[number])).toBe(1);
    expect(recordsIn(writes[1] as (typeof writes)[number])).toBe(19);
    await new Promise((r) => setTimeout(r, 200));
    expect(delivered.length).toBe(1);
    expect(writes[1]?.returned).toBe(false);
    writes[1]?.release();
    expect((await sends).map((r) => r.status)).toEqual(texts.map(() => 'delivered'));
    expect(writes.length).toBe(2);
    expect((await inner.list()).map((r) => r.message.v === 2 && r.message.body)).toEqual(texts);
  });

  it('refuses oversized text and its own address before queueing anything', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir, { deps: { limits: { maxTextBytes: 1024 } } });
    const b = await agent(dir);
    await expect(a.messenger.send(b.key.onion, 'x'.repeat(1025))).rejects.toMatchObject({
      code: 'ERR_TOO_LARGE',
    });
    await expect(a.messenger.send(a.key.onion, 'me')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(a.messenger.send('nonsense.onion', 'x')).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
    expect(await readdir(join(a.home, 'outbox'))).toEqual([]);
  });
});

describe('Messenger among five agents', () => {
  it('every agent messages every other; each gets exactly its four messages', async () => {
    const dir: Directory = new Map();
    const agents = await Promise.all(Array.from({ length: 5 }, () => agent(dir)));
    const got = agents.map(collect);
    const results = await Promise.all(
      agents.flatMap((from, i) =>
        agents
          .filter((_, j) => j !== i)
          .map((to) => from.messenger.send(to.key.onion, `${i}->${to.key.onion.slice(0, 6)}`)),
      ),
    );
    expect(results.every((r) => r.status === 'delivered')).toBe(true);
    for (const [j, a] of agents.entries()) {
      const senders = got[j]?.map((m) => m.from).sort();
      expect(senders).toEqual(
        agents
          .filter((_, k) => k !== j)
          .map((x) => x.key.onion)
          .sort(),
      );
      expect(got[j]?.every((m) => m.text.endsWith(a.key.onion.slice(0, 6)) && m.verified)).toBe(true);
      expect((await a.messenger.inbox()).length).toBe(4);
    }
  });
});

describe('outbox and retries', () => {
  it('queues while the peer is offline and delivers once it comes up', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const bKey = AgentKey.random();
    const queued: QueuedEvent[] = [];
    a.messenger.on('queued', (e: QueuedEvent) => queued.push(e));

    const res = await a.messenger.send(bKey.onion, 'are you there?', { timeoutMs: 2_000 });
    expect(res.status).toBe('queued');
    expect(queued[0]?.id).toBe(res.id);
    expect(await readdir(join(a.home, 'outbox'))).toEqual([`${res.id}.json`]);
    expect(a.messenger.pending().map((p) => p.id)).toEqual([res.id]);

    // let a few retries fail, then bring the peer up
    await waitFor(() => queued.length >= 3, 5_000, 'retries');
    const b = await agent(dir, { key: bKey });
    const got = collect(b);
    await waitFor(() => got.length === 1, 5_000, 'delivery after the peer came up');
    expect(got[0]).toMatchObject({ id: res.id, text: 'are you there?', from: a.key.onion });
    await waitFor(async () => (await readdir(join(a.home, 'outbox'))).length === 0, 5_000, 'outbox emptied');
    expect(a.messenger.pending()).toEqual([]);
  });

  it('survives a restart of the sender with messages queued: each delivered exactly once', async () => {
    const dir: Directory = new Map();
    const aKey = AgentKey.random();
    const bKey = AgentKey.random();
    const first = await startAgent(dir, { key: aKey });
    cleanup.push(() => removeHome(first.home));
    const ids: string[] = [];
    for (const text of ['one', 'two', 'three']) {
      const r = await first.messenger.send(bKey.onion, text, { timeoutMs: 1_000 });
      expect(r.status).toBe('queued');
      ids.push(r.id);
    }
    await first.stop();
    expect((await readdir(join(first.home, 'outbox'))).sort()).toEqual(ids.map((id) => `${id}.json`).sort());

    const b = await agent(dir, { key: bKey });
    const got = collect(b);
    const second = await agent(dir, { key: aKey, home: first.home });
    await waitFor(() => got.length === 3, 10_000, 'queued messages after restart');
    expect(got.map((m) => m.text).sort()).toEqual(['one', 'three', 'two']);
    await waitFor(
      async () => (await readdir(join(first.home, 'outbox'))).length === 0,
      5_000,
      'outbox emptied',
    );
    // Nothing more arrives later (no duplicates from stale retries).
    await new Promise((r) => setTimeout(r, 500));
    expect(got.length).toBe(3);
    expect((await b.messenger.inbox()).map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(second.messenger.pending()).toEqual([]);
  });

  it('survives a restart of the receiver: messages it stored are not handed out again', async () => {
    const dir: Directory = new Map();
    const bKey = AgentKey.random();
    const a = await agent(dir);
    const b1 = await startAgent(dir, { key: bKey });
    cleanup.push(() => removeHome(b1.home));
    const got1 = collect(b1);
    const r1 = await a.messenger.send(bKey.onion, 'before restart');
    expect(r1.status).toBe('delivered');
    await b1.stop();
    const b2 = await agent(dir, { key: bKey, home: b1.home });
    const got2 = collect(b2);
    const r2 = await a.messenger.send(bKey.onion, 'after restart');
    expect(r2.status).toBe('delivered');
    expect(got1.map((m) => m.text)).toEqual(['before restart']);
    expect(got2.map((m) => m.text)).toEqual(['after restart']);
    expect((await b2.messenger.inbox()).map((m) => m.text)).toEqual(['before restart', 'after restart']);
    expect(MESSAGE_PROTOCOL).toBe('/mmogit/msg/1.0.0');
  });

  it('rate-limits a flooding peer without dropping its messages: they arrive after backoff', async () => {
    const dir: Directory = new Map();
    const a = await agent(dir);
    const b = await agent(dir, { deps: { limits: { rate: { capacity: 3, refillPerSecond: 5 } } } });
    const got = collect(b);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => a.messenger.send(b.key.onion, `m${i}`)),
    );
    const queued = results.filter((r) => r.status === 'queued');
    expect(queued.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 'delivered').length).toBeGreaterThanOrEqual(3);
    await waitFor(() => got.length === 8, 10_000, 'rate-limited messages');
    expect(new Set(got.map((m) => m.text)).size).toBe(8);
    await waitFor(() => a.messenger.pending().length === 0, 5_000, 'all acked');
  });
});
