/**
 * A caller's proof of its mmogit key on an A2A message. A2A over an onion service tells the server nothing about
 * who called, so an mmogit caller may sign what it sends: `message.metadata["mmogit/v1"] = { from, to, ts, sig }`,
 * `sig` = Ed25519 under context `a2a-message/v1` (docs/protocol.md §2) over the canonical JSON of
 * `{ v: 1, from, to, ts, messageId, text, data }` — the sender's onion, the addressed host, the time (ms), the
 * message id and its text and data parts as the receiver reads them. The receiver checks the address, a
 * ±5 minute window and the message id (each accepted once), then marks the message `verified`, `from` the onion.
 * @module
 */
import type { Message } from '@a2a-js/sdk';
import { MmogitError } from '../errors.js';
import { type CanonicalValue, canonicalBytes } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import { SIGNING_CONTEXTS, verifySignature } from '../identity/signing.js';

/** The metadata key of the proof. */
export const PROOF_KEY = 'mmogit/v1';
/** How far a proof's `ts` may be from the receiver's clock. */
export const PROOF_WINDOW_MS = 5 * 60_000;
/** How many accepted (sender, message id) pairs the receiver remembers against replays (beyond the window). */
export const PROOF_REPLAY_MEMORY = 10_000;

export interface SenderProof {
  from: string;
  to: string;
  ts: number;
  sig: string;
}

/** The text (joined by newlines) and data parts of a message, as both sides read them. */
export function messageContent(message: Pick<Message, 'parts'>): { text: string; data: unknown[] } {
  const texts: string[] = [];
  const data: unknown[] = [];
  for (const p of message.parts ?? []) {
    if (p.content?.$case === 'text') texts.push(p.content.value);
    else if (p.content?.$case === 'data') data.push(p.content.value);
  }
  return { text: texts.join('\n'), data };
}

function body(proof: Omit<SenderProof, 'sig'>, message: Pick<Message, 'messageId' | 'parts'>): Uint8Array {
  const { text, data } = messageContent(message);
  return canonicalBytes({
    v: 1,
    from: proof.from,
    to: proof.to,
    ts: proof.ts,
    messageId: message.messageId,
    text,
    data: data as CanonicalValue[],
  });
}

/** `message` with the proof of `key` for the A2A server at host `to` (an onion, or a URL's host). */
export function signMessageProof(message: Message, key: AgentKey, to: string, now = Date.now()): Message {
  const proof = { from: key.onion, to, ts: now };
  const sig = Buffer.from(key.sign(SIGNING_CONTEXTS.a2aMessage, body(proof, message))).toString('base64url');
  return { ...message, metadata: { ...(message.metadata ?? {}), [PROOF_KEY]: { ...proof, sig } } };
}

/** Checks proofs for one receiver: its own host name, and memory of accepted message ids. */
export class ProofChecker {
  private readonly seen = new Set<string>();

  constructor(private readonly host: string) {}

  /**
   * The sender's onion when `message` carries a valid proof, null when it carries none. Throws
   * `ERR_BAD_SIGNATURE` when a proof is present but wrong, stale, for another host, or replayed.
   */
  check(message: Pick<Message, 'messageId' | 'parts' | 'metadata'>, now = Date.now()): string | null {
    const raw = message.metadata?.[PROOF_KEY] as Partial<SenderProof> | undefined;
    if (raw === undefined) return null;
    const bad = (why: string) => new MmogitError('ERR_BAD_SIGNATURE', `A2A sender proof refused: ${why}`);
    if (
      typeof raw !== 'object' ||
      raw === null ||
      typeof raw.from !== 'string' ||
      typeof raw.to !== 'string' ||
      typeof raw.ts !== 'number' ||
      typeof raw.sig !== 'string'
    ) {
      throw bad('malformed');
    }
    let from: { hostname: string; publicKey: Uint8Array };
    try {
      from = parseOnionAddress(raw.from);
    } catch {
      throw bad('from is not an onion');
    }
    if (raw.to !== this.host) throw bad('addressed to another host');
    if (!(Math.abs(now - raw.ts) <= PROOF_WINDOW_MS)) throw bad('outside the time window');
    const id = `${from.hostname} ${message.messageId}`;
    if (this.seen.has(id)) throw bad('replayed message id');
    let ok = false;
    try {
      const sig = Buffer.from(raw.sig, 'base64url');
      ok = verifySignature(
        SIGNING_CONTEXTS.a2aMessage,
        body({ from: raw.from, to: raw.to, ts: raw.ts }, message),
        sig,
        from.publicKey,
      );
    } catch {
      ok = false;
    }
    if (!ok) throw bad('signature does not verify');
    this.seen.add(id);
    if (this.seen.size > PROOF_REPLAY_MEMORY) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return from.hostname;
  }
}
