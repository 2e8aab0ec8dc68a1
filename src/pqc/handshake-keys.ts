/**
 * The handshake's key schedule (docs/protocol.md §4.4–4.5): the transcript label, what each side signs, the
 * handshake keys from both shared secrets and the transcript, and the traffic keys bound to the full transcript.
 * @module
 */
import type { Hash } from 'node:crypto';
import { hkdfExpand, hkdfExtract, wipe } from './_primitives.js';
import { concatBytes } from './_wire.js';

/** Domain label hashed first into the transcript and used as the HKDF salt of the handshake secret. */
export const TRANSCRIPT_LABEL = 'mmogit-pq-handshake/v1';
export const LABEL_BYTES = new TextEncoder().encode(TRANSCRIPT_LABEL);

/** What each side signs: role ‖ 0x00 ‖ transcript hash ‖ public keys (docs/protocol.md §4.4). */
export function signedPayload(
  role: 'responder' | 'initiator',
  th: Uint8Array,
  ...keys: Uint8Array[]
): Uint8Array {
  return concatBytes(new TextEncoder().encode(`${role}\0`), th, ...keys);
}

/** The handshake keys of each direction and the chaining key. */
export interface HandshakeKeys {
  r2i: Uint8Array;
  i2r: Uint8Array;
  chain: Uint8Array;
}

/**
 * Handshake secret: HKDF-SHA256 over ML-KEM secret ‖ X25519 secret ‖ transcript hash (which covers both
 * X25519 public keys, the ML-KEM encapsulation key and ciphertext): the X-Wing combiner's inputs
 * (draft-connolly-cfrg-xwing-kem §5.3), so the keys stay secret if either KEM holds.
 */
export function handshakeKeys(ssKem: Uint8Array | null, ssX: Uint8Array, thA: Uint8Array): HandshakeKeys {
  const ikm = ssKem ? concatBytes(ssKem, ssX, thA) : concatBytes(ssX, thA);
  const prk = hkdfExtract(LABEL_BYTES, ikm);
  try {
    return {
      r2i: hkdfExpand(prk, 'mmogit-pq/v1 hs r2i'),
      i2r: hkdfExpand(prk, 'mmogit-pq/v1 hs i2r'),
      chain: hkdfExpand(prk, 'mmogit-pq/v1 chain'),
    };
  } finally {
    wipe(ikm, prk);
  }
}

/** Traffic keys bound to the full transcript. */
export function trafficKeys(chain: Uint8Array, thFinal: Uint8Array): { i2r: Uint8Array; r2i: Uint8Array } {
  const prk = hkdfExtract(thFinal, chain);
  try {
    return {
      i2r: hkdfExpand(prk, 'mmogit-pq/v1 traffic i2r'),
      r2i: hkdfExpand(prk, 'mmogit-pq/v1 traffic r2i'),
    };
  } finally {
    wipe(prk);
  }
}

/** The transcript hash so far (the running hash goes on). */
export function digest(th: Hash): Uint8Array {
  return new Uint8Array(th.copy().digest());
}
