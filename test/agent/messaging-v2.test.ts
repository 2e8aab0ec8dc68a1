// Message format version 2: typed, threaded messages with JSON bodies and metadata, every field signed; and
// interoperability with version 1 agents (a Messenger limited to `versions: [1]` serves and dials only
// /mmogit/msg/1.0.0 and decodes only version 1 envelopes, exactly the version 1 code path).
// fast-check prints the seed of a failing run; FC_RUNS raises the run count.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/agent/messaging-envelope.js';
import {
  MAX_BODY_DEPTH,
  parseAnyEnvelope,
  parseEnvelopeV2,
  signMessageV2,
  verifyAnyMessage,
} from '../../src/agent/messaging-envelope-v2.js';
import type { ReceivedMessage, RefusedEvent } from '../../src/agent/messaging-types.js';
import { canonicalJson } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { agentsPerTest, collect, type Directory, waitFor } from './messaging-helpers.js';

const RUNS = Number(process.env.FC_RUNS ?? 200);
const a = AgentKey.random();
const b = AgentKey.random();

const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : [nested(depth - 1)]);

describe('version 2 envelope', () => {
  it('signs every field: any JSON body round-trips through a frame and verifies; any change breaks it', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 6 }),
        fc.constantFrom('message', 'task-proposal', 'task-result', 'status-update', 'x.custom/v1'),
        fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9._-]{0,10}$/), fc.string({ maxLength: 20 }), {
          minKeys: 0,
          maxKeys: 4,
        }),
        (body, type, meta) => {
          const s = signMessageV2(a, b.onion, { type, body, meta }, { maxBytes: 1 << 20 });
          const frame = decodeFrame(
            encodeFrame({ t: 'msg', m: s.message, sig: s.sig }),
            1 << 22,
            parseAnyEnvelope,
          );
          if (frame.t !== 'msg') throw new Error('not a msg frame');
          // Equal as signed (canonical JSON: -0 travels as 0, which is the same canonical number).
          expect(canonicalJson({ ...frame.m })).toBe(canonicalJson({ ...s.message }));
          expect(verifyAnyMessage({ message: frame.m, sig: frame.sig })).toBe(true);
          expect(frame.m).toMatchObject({ v: 2, type, thread: s.message.id });
          // Change one signed field: the signature no longer verifies.
          for (const changed of [
            { ...s.message, type: `${type}2` },
            { ...s.message, body: [body] },
            { ...s.message, thread: 'f'.repeat(32) },
            { ...s.message, meta: { ...meta, 'Z-not-generated': 'x' } },
            { ...s.message, timestamp: s.message.timestamp + 1 },
          ]) {
            expect(verifyAnyMessage({ message: changed, sig: s.sig })).toBe(false);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses bad input with typed errors before signing', () => {
    const bad = (input: Parameters<typeof signMessageV2>[2], max?: number) => {
      try {
        signMessageV2(a, b.onion, input, max !== undefined ? { maxBytes: max } : {});
        return 'signed';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(bad({ type: 'has space' })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ type: 'x'.repeat(65) })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ thread: 'not-an-id' })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ replyTo: 'A'.repeat(32) })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ meta: { 'bad key': 'v' } })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ text: 'a', body: 'b' })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ body: Number.NaN })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ body: nested(MAX_BODY_DEPTH + 1) as never })).toBe('ERR_INVALID_ARGUMENT');
    expect(bad({ body: nested(MAX_BODY_DEPTH - 1) as never })).toBe('signed');
    expect(bad({ body: 'x'.repeat(100) }, 101)).toBe('signed');
    expect(bad({ body: 'x'.repeat(100) }, 99)).toBe('ERR_TOO_LARGE');
    expect(bad({ text: 'x', meta: { k: 'y'.repeat(100) } }, 50)).toBe('ERR_TOO_LARGE');
  });

  it('refuses malformed envelopes from the wire (extra members, hostile nesting) as ERR_BAD_FRAME', () => {
    const s = signMessageV2(a, b.onion, { body: { ok: true } });
    const code = (x: unknown) => {
      try {
        parseEnvelopeV2(x);
        return 'parsed';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code(s.message)).toBe('parsed');
    expect(code({ ...s.message, extra: 1 })).toBe('ERR_BAD_FRAME');
    expect(code({ ...s.message, body: undefined })).toBe('ERR_BAD_FRAME');
    expect(code({ ...s.message, meta: {} })).toBe('ERR_BAD_FRAME');
    // 100,000 levels of nesting: refused by an iterative check, no stack overflow.
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(code({ ...s.message, body: deep })).toBe('ERR_BAD_FRAME');
  });
});

const { agent } = agentsPerTest();

describe('structured messages between two version 2 agents', () => {
  it('types, JSON bodies, metadata and threads round-trip and verify; the inbox filters them', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const bob = await agent(dir);
    const got = collect(bob);
    const gotA = collect(alice);
    const proposal = await alice.messenger.send(bob.key.onion, {
      type: 'task-proposal',
      body: { task: 'index the repo', priority: 2, tags: ['git', null, true] },
      meta: { deadline: '2026-12-31', lang: 'en' },
    });
    expect(proposal.status).toBe('delivered');
    expect(got[0]).toMatchObject({
      v: 2,
      type: 'task-proposal',
      body: { task: 'index the repo', priority: 2, tags: ['git', null, true] },
      meta: { deadline: '2026-12-31', lang: 'en' },
      thread: proposal.id,
      verified: true,
    });
    // Bob answers: the reply joins the proposal's thread without being told it.
    const result = await bob.messenger.send(alice.key.onion, {
      type: 'task-result',
      body: { ok: true },
      replyTo: proposal.id,
    });
    expect(gotA[0]).toMatchObject({ type: 'task-result', replyTo: proposal.id, thread: proposal.id });
    // Alice follows up in the thread of the result (she knows it from the reply she received).
    await alice.messenger.send(bob.key.onion, { text: 'thanks', replyTo: result.id });
    await alice.messenger.send(bob.key.onion, 'unrelated');
    await waitFor(() => got.length === 3);
    expect(got[1]).toMatchObject({ type: 'message', body: 'thanks', thread: proposal.id });
    expect(got[2]).toMatchObject({ thread: got[2]?.id });

    const inThread = await bob.messenger.inbox({ thread: proposal.id });
    expect(inThread.map((m) => m.text)).toEqual([canonicalJson(got[0]?.body ?? null), 'thanks']);
    expect((await bob.messenger.inbox({ type: 'task-proposal' })).map((m) => m.id)).toEqual([proposal.id]);
    expect((await bob.messenger.inbox({ from: alice.key.onion })).length).toBe(3);
    // Every stored message re-verifies.
    expect((await bob.messenger.inbox()).every((m) => m.verified)).toBe(true);
  });

  it('cursors walk the receive order, strictly increasing even when the clock stands still', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const frozen = Date.now();
    const bob = await agent(dir, { deps: { now: () => frozen } });
    for (const text of ['one', 'two', 'three']) await alice.messenger.send(bob.key.onion, text);
    const all = await bob.messenger.inbox();
    expect(all.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    const ats = all.map((m) => m.receivedAt ?? 0);
    expect(ats[0]).toBeLessThan(ats[1] ?? 0);
    expect(ats[1]).toBeLessThan(ats[2] ?? 0);
    expect((await bob.messenger.inbox({ since: all[0]?.cursor })).map((m) => m.text)).toEqual([
      'two',
      'three',
    ]);
    expect(await bob.messenger.inbox({ since: all[2]?.cursor })).toEqual([]);
    for (const cursor of ['yesterday', 'm1.12', `m2.1.${'a'.repeat(32)}`, '']) {
      await expect(bob.messenger.inbox({ since: cursor })).rejects.toMatchObject({ code: 'ERR_BAD_CURSOR' });
    }
  });
});

describe('following the inbox (Messenger.messages)', () => {
  it('yields the backlog after a cursor, then live messages in receive order, once each; ends on abort', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const bob = await agent(dir);
    for (const text of ['old 1', 'old 2']) await alice.messenger.send(bob.key.onion, text);
    const [first] = await bob.messenger.inbox();
    const abort = new AbortController();
    const seen: ReceivedMessage[] = [];
    const done = (async () => {
      for await (const m of bob.messenger.messages({ since: first?.cursor, signal: abort.signal })) {
        seen.push(m);
        if (seen.length === 1) {
          // Sent while the follower is between the backlog and live messages.
          await alice.messenger.send(bob.key.onion, 'live 1');
          await alice.messenger.send(bob.key.onion, { type: 'status-update', body: { ok: true } });
        }
      }
    })();
    await waitFor(() => seen.length === 3, 10_000, 'the follower');
    abort.abort();
    await done;
    expect(seen.map((m) => m.text)).toEqual(['old 2', 'live 1', '{"ok":true}']);
    expect(new Set(seen.map((m) => m.cursor)).size).toBe(3);
    // A filtered follower from the start sees only its type.
    const typed: ReceivedMessage[] = [];
    const stop = new AbortController();
    const filtered = (async () => {
      for await (const m of bob.messenger.messages({ type: 'status-update', signal: stop.signal }))
        typed.push(m);
    })();
    await waitFor(() => typed.length === 1);
    stop.abort();
    await filtered;
    expect(typed.map((m) => m.type)).toEqual(['status-update']);
    await expect(
      (async () => {
        for await (const _ of bob.messenger.messages({ since: 'nope' })) break;
      })(),
    ).rejects.toMatchObject({ code: 'ERR_BAD_CURSOR' });
  });
});

describe('version 1 ↔ version 2', () => {
  it('a plain text message reaches a version 1 agent as version 1; a version 1 agent reaches a version 2 one', async () => {
    const dir: Directory = new Map();
    const v2 = await agent(dir);
    const v1 = await agent(dir, { deps: { versions: [1] } });
    const gotV1 = collect(v1);
    const gotV2 = collect(v2);
    const r = await v2.messenger.send(v1.key.onion, 'hello old friend');
    expect(r.status).toBe('delivered');
    expect(gotV1).toEqual([
      expect.objectContaining({ id: r.id, v: 1, text: 'hello old friend', verified: true }),
    ]);
    const back = await v1.messenger.send(v2.key.onion, 'hello new friend');
    expect(back.status).toBe('delivered');
    expect(gotV2).toEqual([expect.objectContaining({ id: back.id, v: 1, type: 'message', thread: back.id })]);
    // The sender's stored copy is what the version 1 peer got and acked (it re-verifies).
    await waitFor(async () => (await v2.store.list()).some((x) => x.direction === 'out'));
    const out = (await v2.store.list()).find((x) => x.direction === 'out');
    expect(out?.message.v).toBe(1);
    expect(out && verifyAnyMessage(out)).toBe(true);
  });

  it('a message that needs version 2 gets a typed refusal from a version 1 peer, never a silent loss', async () => {
    const dir: Directory = new Map();
    const v2 = await agent(dir);
    const v1 = await agent(dir, { deps: { versions: [1] } });
    const gotV1 = collect(v1);
    const refused: RefusedEvent[] = [];
    v2.messenger.on('refused', (e) => refused.push(e));
    await expect(
      v2.messenger.send(v1.key.onion, { type: 'task-proposal', body: { task: 'x' } }),
    ).rejects.toMatchObject({ code: 'ERR_PEER_UNSUPPORTED', details: { status: 'refused', needs: 2 } });
    expect(refused.map((e) => e.error.code)).toEqual(['ERR_PEER_UNSUPPORTED']);
    expect(gotV1).toEqual([]);
    expect(v2.messenger.pending()).toEqual([]);
    await waitFor(async () => (await readdir(join(v2.home, 'outbox'))).length === 0, 2_000, 'outbox emptied');
    // A version 1 agent cannot even make one.
    await expect(v1.messenger.send(v2.key.onion, { type: 'status-update', body: 1 })).rejects.toMatchObject({
      code: 'ERR_PEER_UNSUPPORTED',
    });
  });

  it('a queued version 2 message to a peer that comes back as version 1 is refused with an event', async () => {
    const dir: Directory = new Map();
    const v2 = await agent(dir);
    const later = AgentKey.random();
    const refused: RefusedEvent[] = [];
    v2.messenger.on('refused', (e) => refused.push(e));
    const r = await v2.messenger.send(
      later.onion,
      { text: 'threaded', thread: 'a'.repeat(32) },
      { timeoutMs: 1_000 },
    );
    expect(r.status).toBe('queued');
    const v1 = await agent(dir, { key: later, deps: { versions: [1] } });
    const got: ReceivedMessage[] = collect(v1);
    await waitFor(() => refused.length === 1, 5_000, 'the refusal');
    expect(refused[0]).toMatchObject({ id: r.id, to: later.onion, error: { code: 'ERR_PEER_UNSUPPORTED' } });
    await waitFor(async () => (await readdir(join(v2.home, 'outbox'))).length === 0, 2_000, 'outbox emptied');
    expect(v2.messenger.pending()).toEqual([]);
    expect(got).toEqual([]);
  });
});
