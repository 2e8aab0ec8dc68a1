// The mmogit sender proof on A2A messages: it verifies for exactly the message, receiver, sender and time it
// was made for, and once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { userMessage } from '../../src/a2a/client.js';
import { PROOF_KEY, PROOF_WINDOW_MS, ProofChecker, signMessageProof } from '../../src/a2a/proof.js';
import { AgentKey } from '../../src/identity/keys.js';

const sender = AgentKey.random();
const receiver = AgentKey.random();

describe('A2A sender proof', () => {
  it('a signed message verifies as its sender, once; an unsigned one is anonymous', () => {
    const checker = new ProofChecker(receiver.onion);
    const m = signMessageProof(userMessage('hello', { n: 1 }), sender, receiver.onion);
    expect(checker.check(m)).toBe(sender.onion);
    expect(() => checker.check(m)).toThrow(/replayed/);
    expect(checker.check(userMessage('anonymous'))).toBeNull();
  });

  it('refuses another receiver, a stale or future time, a malformed proof and a wrong key', () => {
    const now = Date.now();
    const m = (to = receiver.onion, at = now) => signMessageProof(userMessage('x'), sender, to, at);
    const check = (msg: ReturnType<typeof m>) => new ProofChecker(receiver.onion).check(msg, now);
    expect(() => check(m(AgentKey.random().onion))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_SIGNATURE' }),
    );
    expect(() => check(m(receiver.onion, now - PROOF_WINDOW_MS - 1))).toThrow(/time window/);
    expect(() => check(m(receiver.onion, now + PROOF_WINDOW_MS + 1))).toThrow(/time window/);
    const signed = m();
    const proof = signed.metadata?.[PROOF_KEY] as Record<string, unknown>;
    expect(() => check({ ...signed, metadata: { [PROOF_KEY]: { ...proof, ts: 'soon' } } })).toThrow(
      /malformed/,
    );
    expect(() => check({ ...signed, metadata: { [PROOF_KEY]: { ...proof, from: 'nobody' } } })).toThrow(
      /not an onion/,
    );
    // Someone else claiming to be the sender (their own signature, the sender's onion).
    const forged = signMessageProof(userMessage('x'), AgentKey.random(), receiver.onion, now);
    const forgedProof = forged.metadata?.[PROOF_KEY] as Record<string, unknown>;
    expect(() =>
      check({ ...forged, metadata: { [PROOF_KEY]: { ...forgedProof, from: sender.onion } } }),
    ).toThrow(/does not verify/);
  });

  it('any change to the text, the data or the message id breaks it (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), fc.jsonValue(), (text, extra, data) => {
        const signed = signMessageProof(userMessage(text, data), sender, receiver.onion);
        const changedText = { ...signed, parts: userMessage(text + extra, data).parts };
        const changedId = { ...signed, messageId: `${signed.messageId}x` };
        const changedData = { ...signed, parts: userMessage(text, { wrapped: data }).parts };
        for (const bad of [changedText, changedId, changedData]) {
          expect(() => new ProofChecker(receiver.onion).check(bad)).toThrow(/does not verify/);
        }
        expect(new ProofChecker(receiver.onion).check(signed)).toBe(sender.onion);
      }),
      { numRuns: 100 },
    );
  });
});
