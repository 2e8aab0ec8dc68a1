import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  maxFrameBytesFor,
  signAck,
  signMessage,
  textBytes,
  verifyAck,
  verifyMessage,
} from '../../src/agent/messaging-envelope.js';
import { parseAnyEnvelope, signMessageV2, verifyAnyMessage } from '../../src/agent/messaging-envelope-v2.js';
import { KeyedRateLimiter, TokenBucket } from '../../src/agent/rate-limit.js';
import { MmogitError } from '../../src/errors.js';
import { canonicalBytes } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { SIGNING_CONTEXTS, verifySignature } from '../../src/identity/signing.js';
import { propertyParams } from '../helpers/property.js';

const a = AgentKey.random();
const b = AgentKey.random();

describe('message envelope', () => {
  it('is signed under the message context only (domain separation)', () => {
    const s = signMessage(a, b.onion, 'hi', { timestamp: 1 });
    const body = canonicalBytes({ ...s.message });
    const sig = Buffer.from(s.sig, 'base64');
    expect(verifySignature(SIGNING_CONTEXTS.message, body, sig, a.publicKey)).toBe(true);
    expect(verifySignature(SIGNING_CONTEXTS.messageAck, body, sig, a.publicKey)).toBe(false);
    expect(verifySignature(SIGNING_CONTEXTS.memoryEntry, body, sig, a.publicKey)).toBe(false);
    expect(s.message).toEqual({
      v: 1,
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      from: a.onion,
      to: b.onion,
      text: 'hi',
      timestamp: 1,
    });
  });

  it('round-trips any text through a frame and still verifies; any change breaks the signature', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.nat(), (text, ts) => {
        const s = signMessage(a, b.onion.toUpperCase(), text, { timestamp: ts });
        const f = decodeFrame(
          encodeFrame({ t: 'msg', m: s.message, sig: s.sig }),
          maxFrameBytesFor(64 * 1024),
        );
        if (f.t !== 'msg') return false;
        const again = { message: f.m, sig: f.sig };
        return verifyMessage(again) && !verifyMessage({ message: { ...f.m, text: `${text}.` }, sig: f.sig });
      }),
      { numRuns: 100 },
    );
  });

  it('counts text as it is escaped on the wire, so a text at the cap always fits the frame cap', () => {
    expect(textBytes('\u0001"é')).toBe(6 + 2 + 2);
    const s = signMessage(a, b.onion, '\u0001'.repeat(170), { maxTextBytes: 1024 });
    expect(encodeFrame({ t: 'msg', m: s.message, sig: s.sig }).length).toBeLessThanOrEqual(
      maxFrameBytesFor(1024),
    );
    expect(() => signMessage(a, b.onion, '\u0001'.repeat(171), { maxTextBytes: 1024 })).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_LARGE' }),
    );
  });

  it('acks verify against the acknowledging agent only', () => {
    const ack = signAck(b, 'ab'.repeat(16), 5);
    expect(verifyAck(ack)).toBe(true);
    expect(verifyAck({ ack: { ...ack.ack, by: a.onion }, sig: ack.sig })).toBe(false);
    const f = decodeFrame(encodeFrame({ t: 'ack', a: ack.ack, sig: ack.sig }), 10_000);
    expect(f).toEqual({ t: 'ack', a: ack.ack, sig: ack.sig });
  });

  it.each([
    ['empty', ''],
    ['array', '[]'],
    ['bad sig', JSON.stringify({ t: 'ack', a: {}, sig: 'x' })],
    ['upper-case onion', 'UPPER'],
    ['float timestamp', 'FLOAT'],
    ['invalid utf-8', 'BIN'],
  ])('refuses %s with ERR_BAD_FRAME', (_n, input) => {
    const s = signMessage(a, b.onion, 'x');
    let bytes: Uint8Array = new TextEncoder().encode(input);
    if (input === 'UPPER')
      bytes = encodeFrame({ t: 'msg', m: { ...s.message, from: a.onion.toUpperCase() }, sig: s.sig });
    if (input === 'FLOAT') bytes = encodeFrame({ t: 'msg', m: { ...s.message, timestamp: 1.5 }, sig: s.sig });
    if (input === 'BIN') bytes = Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d);
    expect(() => decodeFrame(bytes, 10_000)).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
  });

  it('refuses a frame over the cap before parsing (ERR_TOO_LARGE)', () => {
    expect(() => decodeFrame(new Uint8Array(101), 100)).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_LARGE' }),
    );
  });
});

describe('message frame decoder under hostile input', () => {
  const decodesOrTyped = (value: unknown) => {
    const bytes = new TextEncoder().encode(JSON.stringify(value) ?? 'null');
    try {
      const f = decodeFrame(bytes, maxFrameBytesFor(64 * 1024));
      if (f.t === 'msg') verifyMessage({ message: f.m, sig: f.sig });
      if (f.t === 'ack') verifyAck({ ack: f.a, sig: f.sig });
    } catch (e) {
      expect(e, String(e)).toBeInstanceOf(MmogitError);
    }
    // the same bytes on the version 2 protocol (either envelope version)
    try {
      const f = decodeFrame(bytes, maxFrameBytesFor(64 * 1024), parseAnyEnvelope);
      if (f.t === 'msg') verifyAnyMessage({ message: f.m, sig: f.sig });
    } catch (e) {
      expect(e, String(e)).toBeInstanceOf(MmogitError);
    }
  };

  it('property: any JSON value is a frame or a typed error', () => {
    fc.assert(
      fc.property(fc.jsonValue(), decodesOrTyped),
      propertyParams('envelope jsonValue', { numRuns: 500 }),
    );
  });

  it('property: frames with one member replaced by any JSON value are frames or typed errors', () => {
    const s = signMessage(a, b.onion, 'hello', { timestamp: 5 });
    const ack = signAck(b, s.message.id, 6);
    const v2 = signMessageV2(a, b.onion, { type: 'task', body: { n: [1, { x: 'y' }] }, meta: { k: 'v' } });
    const frames: Record<string, unknown>[] = [
      { t: 'msg', m: s.message, sig: s.sig },
      { t: 'msg', m: v2.message, sig: v2.sig },
      { t: 'ack', a: ack.ack, sig: ack.sig },
      { t: 'err', id: s.message.id, code: 'ERR_X', message: 'no' },
      { t: 'ping', n: 'ab'.repeat(8) },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...frames),
        fc.constantFrom('t', 'm', 'a', 'sig', 'code', 'message', 'n', 'id', 'extra'),
        fc.constantFrom(
          '',
          'v',
          'id',
          'from',
          'to',
          'text',
          'timestamp',
          'status',
          'by',
          'type',
          'body',
          'thread',
          'replyTo',
          'meta',
          'extra',
        ),
        fc.jsonValue(),
        (frame, key, inner, value) => {
          const copy = structuredClone(frame) as Record<string, Record<string, unknown>>;
          const target = copy[key];
          if (inner !== '' && typeof target === 'object' && target !== null) target[inner] = value;
          else (copy as Record<string, unknown>)[key] = value;
          decodesOrTyped(copy);
        },
      ),
      propertyParams('envelope near-miss', { numRuns: 1_000 }),
    );
  });

  // Kept from CI (seed 425779202, path 103:5:3:3:80): an ack whose `v` was `{"toString":""}` made the decoder's
  // error message call that member and throw a TypeError instead of ERR_BAD_FRAME. fc.jsonValue() rarely draws
  // such keys, so every member of every frame gets each of them here.
  it('regression: members that are objects with their own toString, valueOf or array shape are typed errors', () => {
    const s = signMessage(a, b.onion, 'hello', { timestamp: 5 });
    const ack = signAck(b, s.message.id, 6);
    const v2 = signMessageV2(a, b.onion, { type: 'task', body: 'x' });
    const hostile: unknown[] = [
      { toString: '' },
      { toString: null, valueOf: 1 },
      { toString: {} },
      [{ toString: 1 }],
    ];
    const frames: Record<string, Record<string, unknown>>[] = [
      { t: 'msg', m: { ...s.message }, sig: s.sig } as never,
      { t: 'msg', m: { ...v2.message }, sig: v2.sig } as never,
      { t: 'ack', a: { ...ack.ack }, sig: ack.sig } as never,
    ];
    let cases = 0;
    for (const frame of frames) {
      for (const [key, member] of Object.entries(frame)) {
        for (const h of hostile) {
          decodesOrTyped({ ...frame, [key]: h });
          cases++;
          if (typeof member !== 'object' || member === null) continue;
          for (const inner of Object.keys(member)) {
            decodesOrTyped({ ...frame, [key]: { ...member, [inner]: h } });
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(60);
    // The CI case itself: the ack's version names what it got without calling into it.
    const bad = { t: 'ack', a: { ...ack.ack, v: { toString: '' } }, sig: ack.sig };
    expect(() => decodeFrame(new TextEncoder().encode(JSON.stringify(bad)), 1024)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME', message: expect.stringContaining('an object') }),
    );
  });
});

describe('rate limit', () => {
  it('token bucket: bursts up to capacity, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 2 }, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    expect(bucket.waitMs()).toBe(500);
    now += 499;
    expect(bucket.take()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
    now += 60_000;
    expect(bucket.full).toBe(true);
  });

  it('limits each key separately and keeps the map bounded', () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ capacity: 1, refillPerSecond: 1 }, 4, () => now);
    expect(limiter.take('x')).toBe(true);
    expect(limiter.take('x')).toBe(false);
    expect(limiter.take('y')).toBe(true);
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`);
    expect((limiter as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(4);
    now += 1000;
    expect(limiter.retryAfterMs('nobody')).toBe(0);
  });
});
