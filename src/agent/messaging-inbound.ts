/**
 * The checks on an incoming message, as one pure function: given the message, the session's peer, the time
 * and the limits, it says whether to accept the message, refuse it (an honest mistake: tell the peer, keep the
 * stream) or reject it (only a broken or malicious peer does this: tell the peer, reset the stream).
 * docs/protocol.md §5.5 lists the checks and their order.
 * @module
 */
import { MmogitError } from '../errors.js';
import { FILE_MESSAGE_TYPE } from './files-wire.js';
import { type AnySignedMessage, payloadBytes, verifyAnyMessage } from './messaging-envelope-v2.js';

/** The limits {@link checkInbound} applies (all required; the messenger fills in its defaults). */
export interface InboundLimits {
  maxTextBytes: number;
  maxFutureSkewMs: number;
  maxAgeMs: number;
}

/** What {@link checkInbound} knows besides the message. */
export interface InboundContext {
  /** The onion the PQ session authenticated. */
  peer: string;
  /** This agent's onion. */
  self: string;
  /** The receiver's clock, ms. */
  now: number;
  /** Whether the peer's rate limit allowed this message (the limiter is consulted first, for every message). */
  rate: { allowed: true } | { allowed: false; retryAfterMs: number };
}

/** The outcome: `refuse` keeps the stream, `reject` resets it. */
export type InboundVerdict =
  | { verdict: 'accept' }
  | { verdict: 'refuse'; error: MmogitError }
  | { verdict: 'reject'; error: MmogitError };

const refuse = (error: MmogitError): InboundVerdict => ({ verdict: 'refuse', error });
const reject = (error: MmogitError): InboundVerdict => ({ verdict: 'reject', error });

/**
 * Checks, in this order: rate (refuse, `ERR_RATE_LIMITED` with `details.retryAfterMs`); sender is the session
 * peer, recipient is this agent (reject, `ERR_UNTRUSTED_DATA`); size ({@link payloadBytes}; reject, `ERR_TOO_LARGE`);
 * signature (reject, `ERR_BAD_SIGNATURE`); timestamp within `[now - maxAgeMs, now + maxFutureSkewMs]`
 * (refuse, `ERR_UNTRUSTED_DATA`: clocks drift). The signature is checked before the time window so a forged
 * message is never answered as if it were merely late.
 *
 * @example
 * checkInbound(signed, { peer, self: key.onion, now: Date.now(), rate: { allowed: true } }, limits)
 * // { verdict: 'accept' }
 */
export function checkInbound(
  signed: AnySignedMessage,
  context: InboundContext,
  limits: InboundLimits,
): InboundVerdict {
  const m = signed.message;
  if (!context.rate.allowed) {
    const wait = context.rate.retryAfterMs;
    return refuse(
      new MmogitError('ERR_RATE_LIMITED', `rate limited, retry in ${wait} ms`, {
        details: { retryAfterMs: wait },
      }),
    );
  }
  if (m.from !== context.peer) {
    return reject(
      new MmogitError(
        'ERR_UNTRUSTED_DATA',
        `message claims to be from ${m.from} but the session is with ${context.peer}`,
      ),
    );
  }
  if (m.to !== context.self) {
    return reject(new MmogitError('ERR_UNTRUSTED_DATA', `message is addressed to ${m.to}`));
  }
  const size = payloadBytes(m);
  if (size > limits.maxTextBytes) {
    return reject(
      new MmogitError('ERR_TOO_LARGE', `message is ${size} bytes, the limit is ${limits.maxTextBytes}`, {
        details: { bytes: size, limit: limits.maxTextBytes },
      }),
    );
  }
  if (!verifyAnyMessage(signed)) {
    return reject(new MmogitError('ERR_BAD_SIGNATURE', `message ${m.id} signature does not verify`));
  }
  if (m.v === 2 && m.type === FILE_MESSAGE_TYPE) {
    // A file's entry is listed only once its file is stored and verified (files-receive.ts), never bare.
    return refuse(
      new MmogitError('ERR_UNTRUSTED_DATA', `type "${FILE_MESSAGE_TYPE}" comes with a file only`),
    );
  }
  if (m.timestamp > context.now + limits.maxFutureSkewMs || m.timestamp < context.now - limits.maxAgeMs) {
    return refuse(
      new MmogitError(
        'ERR_UNTRUSTED_DATA',
        `message timestamp ${m.timestamp} is outside the accepted window`,
      ),
    );
  }
  return { verdict: 'accept' };
}
