// The receiver's checks as a pure function: property tests against an independent statement of the rules
// (docs/protocol.md §5.5), plus the messenger's injected clock deciding the time window end to end.
// fast-check prints the seed and the shrunk counterexample of a failing run; FC_RUNS raises the run count.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signMessage, textBytes } from '../../src/agent/messaging-envelope.js';
import { checkInbound, type InboundLimits } from '../../src/agent/messaging-inbound.js';
import type { ReceivedMessage } from '../../src/agent/messaging-types.js';
import { AgentKey } from '../../src/identity/keys.js';
import { agentsPerTest, type Directory } from './messaging-helpers.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const keys = Array.from({ length: 3 }, () => AgentKey.random());
const limits: InboundLimits = { maxTextBytes: 64, maxFutureSkewMs: 5_000, maxAgeMs: 60_000 };
const NOW = 1_800_000_000_000;

const input = fc.record({
  signer: fc.nat(keys.length - 1),
  to: fc.nat(keys.length - 1),
  peer: fc.nat(keys.length - 1),
  self: fc.nat(keys.length - 1),
  // Around the 64-byte cap as often as not, so the size edge is hit.
  text: fc.oneof(fc.string({ maxLength: 80, unit: 'grapheme' }), fc.string({ minLength: 62, maxLength: 66 })),
  offset: fc.integer({ min: -120_000, max: 20_000 }),
  tamper: fc.boolean(),
  rateAllowed: fc.boolean(),
  retryAfterMs: fc.nat(10_000),
});

describe('checkInbound (pure)', () => {
  it('accepts exactly the messages every rule allows, and otherwise gives the first failed rule', () => {
    fc.assert(
      fc.property(input, (x) => {
        const signer = keys[x.signer] as AgentKey;
        const signed = signMessage(signer, (keys[x.to] as AgentKey).onion, x.text, {
          timestamp: NOW + x.offset,
          maxTextBytes: 1 << 20,
        });
        if (x.tamper) signed.message = { ...signed.message, text: `${signed.message.text}!` };
        const peer = (keys[x.peer] as AgentKey).onion;
        const self = (keys[x.self] as AgentKey).onion;
        const got = checkInbound(
          signed,
          {
            peer,
            self,
            now: NOW,
            rate: x.rateAllowed ? { allowed: true } : { allowed: false, retryAfterMs: x.retryAfterMs },
          },
          limits,
        );
        // The rules, in order, each with its verdict and code.
        const rules: [boolean, 'refuse' | 'reject', string][] = [
          [x.rateAllowed, 'refuse', 'ERR_RATE_LIMITED'],
          [signed.message.from === peer, 'reject', 'ERR_UNTRUSTED_DATA'],
          [signed.message.to === self, 'reject', 'ERR_UNTRUSTED_DATA'],
          [textBytes(signed.message.text) <= limits.maxTextBytes, 'reject', 'ERR_TOO_LARGE'],
          [!x.tamper, 'reject', 'ERR_BAD_SIGNATURE'],
          [
            x.offset <= limits.maxFutureSkewMs && x.offset >= -limits.maxAgeMs,
            'refuse',
            'ERR_UNTRUSTED_DATA',
          ],
        ];
        const failed = rules.find(([ok]) => !ok);
        if (!failed) {
          expect(got).toEqual({ verdict: 'accept' });
        } else {
          expect(got.verdict).toBe(failed[1]);
          expect(got.verdict !== 'accept' && got.error.code).toBe(failed[2]);
        }
        if (!x.rateAllowed) {
          expect(got.verdict !== 'accept' && got.error.details).toEqual({ retryAfterMs: x.retryAfterMs });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('never accepts or merely refuses a forged message (a forgery is never answered as just late)', () => {
    fc.assert(
      fc.property(input, (x) => {
        const self = keys[0] as AgentKey;
        const signer = keys[1] as AgentKey;
        const signed = signMessage(signer, self.onion, x.text.slice(0, 10), { timestamp: NOW + x.offset });
        signed.message = { ...signed.message, timestamp: signed.message.timestamp + 1 };
        const got = checkInbound(
          signed,
          { peer: signer.onion, self: self.onion, now: NOW, rate: { allowed: true } },
          limits,
        );
        expect(got).toMatchObject({ verdict: 'reject', error: { code: 'ERR_BAD_SIGNATURE' } });
      }),
      { numRuns: RUNS },
    );
  });

  it('the size and window edges are inclusive', () => {
    const [self, signer] = keys as [AgentKey, AgentKey];
    const at = (offset: number) =>
      checkInbound(
        signMessage(signer, self.onion, 'edge', { timestamp: NOW + offset }),
        { peer: signer.onion, self: self.onion, now: NOW, rate: { allowed: true } },
        limits,
      ).verdict;
    expect([
      at(limits.maxFutureSkewMs),
      at(limits.maxFutureSkewMs + 1),
      at(-limits.maxAgeMs),
      at(-limits.maxAgeMs - 1),
    ]).toEqual(['accept', 'refuse', 'accept', 'refuse']);
    const sized = (n: number) =>
      checkInbound(
        signMessage(signer, self.onion, 'x'.repeat(n), { timestamp: NOW }),
        { peer: signer.onion, self: self.onion, now: NOW, rate: { allowed: true } },
        limits,
      ).verdict;
    expect([sized(limits.maxTextBytes), sized(limits.maxTextBytes + 1)]).toEqual(['accept', 'reject']);
  });
});

const { agent } = agentsPerTest();

describe('Messenger with an injected clock', () => {
  it('stamps messages and acks with its clock, and the receiver judges the window by its own', async () => {
    const dir: Directory = new Map();
    let aClock = NOW;
    const a = await agent(dir, { deps: { now: () => aClock } });
    const b = await agent(dir, { deps: { now: () => NOW, limits: { maxFutureSkewMs: 1_000 } } });
    const got: ReceivedMessage[] = [];
    b.messenger.on('message', (m) => got.push(m));
    const first = await a.messenger.send(b.key.onion, 'on time');
    aClock += 1;
    const second = await a.messenger.send(b.key.onion, 'a millisecond later');
    expect([first.status, second.status]).toEqual(['delivered', 'delivered']);
    expect(got.map((m) => [m.text, m.timestamp])).toEqual([
      ['on time', NOW],
      ['a millisecond later', NOW + 1],
    ]);
    // Distinct timestamps without sleeping: the inbox orders by them.
    expect((await b.messenger.inbox()).map((m) => m.text)).toEqual(['on time', 'a millisecond later']);
    // a's clock runs ahead of b's window: b refuses (keeps the stream), a keeps the message queued.
    aClock = NOW + 60_000;
    const early = await a.messenger.send(b.key.onion, 'from the future', { timeoutMs: 2_000 });
    expect(early.status).toBe('queued');
    expect(got.length).toBe(2);
  });
});
