/**
 * The handshake's options and their checks: which cipher suites a side offers or accepts, the payload bound,
 * and the default deadline.
 * @module
 */
import { MmogitError } from '../errors.js';
import { type CipherSuite, SUITE_BITS } from './_wire.js';
import { DEFAULT_MAX_PAYLOAD } from './session.js';

/** Default time for the whole handshake: 1.5 round trips over tor, with slack for slow circuits. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Options shared by both roles. */
export interface HandshakeOptions {
  /** Accept the classical-only suite (no post-quantum protection). Off by default. */
  allowClassical?: boolean;
  /**
   * Restrict the suites this side offers (initiator) or accepts (responder). Classical is only ever used when
   * `allowClassical` is also true; the hybrid suite is always preferred when both sides have it.
   */
  suites?: readonly CipherSuite[];
  /** Largest payload this session sends or accepts (default {@link DEFAULT_MAX_PAYLOAD}). */
  maxPayload?: number;
  signal?: AbortSignal;
  /** Default {@link HANDSHAKE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** Options of {@link initiateSession}. */
export interface InitiateOptions extends HandshakeOptions {
  /** The onion address we dialled: the responder must prove it owns this identity. */
  expectedPeer: string;
}

/** The suite bits `options` enable; `ERR_INVALID_ARGUMENT` for an unknown suite or none enabled. */
export function enabledBits(options: HandshakeOptions): number {
  const wanted = options.suites ?? ['hybrid-x25519-mlkem768', 'classical-x25519'];
  let bits = 0;
  for (const s of wanted) {
    if (s === 'classical-x25519' && !options.allowClassical) continue;
    const bit = SUITE_BITS[s];
    if (bit === undefined) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', `unknown cipher suite "${s}"`);
    }
    bits |= bit;
  }
  if (bits === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'no cipher suite enabled (classical needs allowClassical)');
  }
  return bits;
}

/** `maxPayload` or the default, checked (`ERR_INVALID_ARGUMENT`). */
export function checkMaxPayload(max: number | undefined): number {
  const value = max ?? DEFAULT_MAX_PAYLOAD;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'maxPayload must be a non-negative integer');
  }
  return value;
}
