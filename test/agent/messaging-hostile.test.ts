// A hostile or broken peer: it speaks through a real PQ session (or raw TCP) and sends what an honest
// Messenger never would. The receiving messenger must refuse with a typed error, reset that stream only,
// and keep serving everyone else.
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MESSAGE_PROTOCOL, type ReceivedMessage } from '../../src/agent/messaging.js';
import { encodeFrame, type MessagingFrame, signMessage } from '../../src/agent/messaging-envelope.js';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { initiateSession, type SecureSession } from '../../src/pqc/index.js';
import {
  type Directory,
  loopbackNode,
  removeHome,
  startAgent,
  type TestAgent,
  waitFor,
} from './messaging-helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

async function victim(dir: Directory, deps: NonNullable<Parameters<typeof startAgent>[1]>['deps'] = {}) {
  const b = await startAgent(dir, { deps });
  cleanup.push(async () => {
    await b.stop();
    await removeHome(b.home);
  });
  const errors: MmogitError[] = [];
  const got: ReceivedMessage[] = [];
  b.messenger.on('error', (e: MmogitError) => errors.push(e));
  b.messenger.on('message', (m: ReceivedMessage) => got.push(m));
  return { b, errors, got };
}

/** A raw PQ session from `key` to `b`, outside any Messenger. */
async function rawSession(
  dir: Directory,
  key: AgentKey,
  b: TestAgent,
  maxPayload?: number,
): Promise<SecureSession> {
  const node = await loopbackNode(key.onion, dir);
  cleanup.push(() => node.stop());
  const { channel } = await node.dial(b.key.onion, MESSAGE_PROTOCOL);
  return initiateSession(channel, key, {
    expectedPeer: b.key.onion,
    ...(maxPayload ? { maxPayload } : {}),
  });
}

const send = (s: SecureSession, f: MessagingFrame | string) =>
  s.send(typeof f === 'string' ? new TextEncoder().encode(f) : encodeFrame(f));

async function reply(s: SecureSession): Promise<MessagingFrame | null> {
  const p = await s.receive({ timeoutMs: 5_000 });
  return p === null ? null : (JSON.parse(new TextDecoder().decode(p)) as MessagingFrame);
}

/** After a reset, the session ends (null or a closed-connection error), within 5 s. */
async function expectDropped(s: SecureSession): Promise<void> {
  const outcome = await s.receive({ timeoutMs: 5_000 }).then(
    (v) => v,
    (e: unknown) => e,
  );
  if (outcome !== null) expect(outcome).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
}

/** The victim still works for an honest peer. */
async function stillServes(dir: Directory, b: TestAgent): Promise<void> {
  const a = await startAgent(dir);
  cleanup.push(async () => {
    await a.stop();
    await removeHome(a.home);
  });
  expect((await a.messenger.send(b.key.onion, 'still there?')).status).toBe('delivered');
}

describe('messaging: bad frames', () => {
  it('answers a well-formed message with a verifiable ack and de-duplicates a replay by id', async () => {
    const dir: Directory = new Map();
    const { b, got } = await victim(dir);
    const x = AgentKey.random();
    const s = await rawSession(dir, x, b);
    const signed = signMessage(x, b.key.onion, 'once');
    for (let i = 0; i < 3; i++) {
      await send(s, { t: 'msg', m: signed.message, sig: signed.sig });
      expect(await reply(s)).toMatchObject({ t: 'ack', a: { id: signed.message.id, by: b.key.onion } });
    }
    expect(got.map((m) => m.text)).toEqual(['once']);
    expect((await b.messenger.inbox()).length).toBe(1);
  });

  it.each([
    ['not JSON', 'definitely { not json', 'ERR_BAD_FRAME'],
    ['unknown frame type', JSON.stringify({ t: 'launch', n: 1 }), 'ERR_BAD_FRAME'],
    ['message with extra member', 'EXTRA', 'ERR_BAD_FRAME'],
    ['tampered text', 'TAMPER', 'ERR_BAD_SIGNATURE'],
    ['from another identity', 'IMPERSONATE', 'ERR_UNTRUSTED_DATA'],
    ['addressed to someone else', 'MISADDRESSED', 'ERR_UNTRUSTED_DATA'],
    ['text over the cap', 'OVERSIZE', 'ERR_TOO_LARGE'],
  ])('%s → typed error, that stream reset, node keeps running', async (_name, kind, code) => {
    const dir: Directory = new Map();
    const { b, errors, got } = await victim(dir, { limits: { maxTextBytes: 1024 } });
    const x = AgentKey.random();
    const s = await rawSession(dir, x, b);
    const other = AgentKey.random();
    const good = signMessage(x, b.key.onion, 'hi');
    let frame: MessagingFrame | string = kind;
    if (kind === 'EXTRA')
      frame = JSON.stringify({ t: 'msg', m: { ...good.message, extra: 1 }, sig: good.sig });
    if (kind === 'TAMPER') frame = { t: 'msg', m: { ...good.message, text: 'hI' }, sig: good.sig };
    if (kind === 'IMPERSONATE') {
      const forged = signMessage(other, b.key.onion, 'i am other');
      frame = { t: 'msg', m: forged.message, sig: forged.sig };
    }
    if (kind === 'MISADDRESSED') {
      const m = signMessage(x, other.onion, 'not for b');
      frame = { t: 'msg', m: m.message, sig: m.sig };
    }
    if (kind === 'OVERSIZE') {
      const m = signMessage(x, b.key.onion, 'y'.repeat(2048), { maxTextBytes: 4096 });
      frame = { t: 'msg', m: m.message, sig: m.sig };
    }
    await send(s, frame);
    expect(await reply(s)).toMatchObject({ t: 'err', code });
    await expectDropped(s);
    await waitFor(() => errors.length > 0, 2_000, 'error event');
    expect(errors[0]).toBeInstanceOf(MmogitError);
    expect(errors[0]?.code).toBe(code);
    expect(errors[0]?.details?.peer).toBe(x.onion);
    expect(got).toEqual([]);
    await stillServes(dir, b);
  });

  it('a record over the frame cap is refused by the PQ layer unread; the stream is reset', async () => {
    const dir: Directory = new Map();
    const { b, errors } = await victim(dir, { limits: { maxTextBytes: 1024 } });
    const s = await rawSession(dir, AgentKey.random(), b, 1 << 20);
    await send(s, 'z'.repeat(200_000)).catch(() => {});
    await expectDropped(s);
    await waitFor(() => errors.length > 0, 2_000, 'error event');
    expect(errors[0]?.code).toBe('ERR_TOO_LARGE');
    await stillServes(dir, b);
  });

  it('a message dated in the future is refused but the stream stays up', async () => {
    const dir: Directory = new Map();
    const { b, got } = await victim(dir);
    const x = AgentKey.random();
    const s = await rawSession(dir, x, b);
    const future = signMessage(x, b.key.onion, 'from the future', { timestamp: Date.now() + 3_600_000 });
    await send(s, { t: 'msg', m: future.message, sig: future.sig });
    expect(await reply(s)).toMatchObject({ t: 'err', id: future.message.id, code: 'ERR_UNTRUSTED_DATA' });
    const now = signMessage(x, b.key.onion, 'from now');
    await send(s, { t: 'msg', m: now.message, sig: now.sig });
    expect(await reply(s)).toMatchObject({ t: 'ack', a: { id: now.message.id } });
    expect(got.map((m) => m.text)).toEqual(['from now']);
  });

  it('rate-limited requests get ERR_RATE_LIMITED with the stream kept', async () => {
    const dir: Directory = new Map();
    const { b } = await victim(dir, { limits: { rate: { capacity: 2, refillPerSecond: 0.5 } } });
    const x = AgentKey.random();
    const s = await rawSession(dir, x, b);
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const m = signMessage(x, b.key.onion, `m${i}`);
      await send(s, { t: 'msg', m: m.message, sig: m.sig });
      const r = await reply(s);
      codes.push(r?.t === 'err' ? r.code : String(r?.t));
    }
    expect(codes).toEqual(['ack', 'ack', 'ERR_RATE_LIMITED', 'ERR_RATE_LIMITED']);
    await send(s, { t: 'ping', n: '00'.repeat(16) });
    expect(await reply(s)).toMatchObject({ t: 'err', code: 'ERR_RATE_LIMITED' });
  });

  it('a peer that does not speak the PQ handshake is refused with ERR_HANDSHAKE', async () => {
    const dir: Directory = new Map();
    const { b, errors } = await victim(dir);
    const port = dir.get(b.key.onion) as number;
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.on('error', () => {});
    sock.resume(); // read (and drop) whatever comes back, so 'end' and 'close' are seen
    sock.write(`${MESSAGE_PROTOCOL}\nGET / HTTP/1.1\r\nHost: x\r\n\r\n${'A'.repeat(4000)}`);
    await new Promise<void>((r) => sock.once('close', () => r()));
    await waitFor(() => errors.length > 0, 5_000, 'handshake error');
    expect(errors[0]?.code).toBe('ERR_HANDSHAKE');
    await stillServes(dir, b);
  });
});
