/**
 * Wire constants and the fixed 8-byte header of every handshake message (docs/protocol.md §4.2).
 * Pure encode/parse; no I/O.
 * @module
 */
import { HandshakeError } from './errors.js';

/** Version byte of the handshake; a peer with another value is refused with reason `version`. */
export const PQ_PROTOCOL_VERSION = 1;

/** A key-agreement suite. Both use Ed25519 identities and AES-256-GCM traffic keys. */
export type CipherSuite = 'hybrid-x25519-mlkem768' | 'classical-x25519';

/** "MMPQ": lets a peer that speaks something else fail fast with reason `version`. */
export const MAGIC = Uint8Array.of(0x4d, 0x4d, 0x50, 0x51);
export const HEADER_LEN = 8;

export const MSG_HELLO = 1;
export const MSG_RESPONSE = 2;
export const MSG_FINISH = 3;
export const MSG_ALERT = 0xff;

/** Suite bits: in message 1 a set (offer), in message 2 exactly one (choice). */
export const SUITE_BITS: Record<CipherSuite, number> = {
  'hybrid-x25519-mlkem768': 0x01,
  'classical-x25519': 0x02,
};
export const KNOWN_SUITE_BITS = 0x03;

export function suiteFromBit(bit: number): CipherSuite | undefined {
  if (bit === 0x01) return 'hybrid-x25519-mlkem768';
  if (bit === 0x02) return 'classical-x25519';
  return undefined;
}

/** Alert reason bytes (only pre-authentication negotiation failures are ever alerted). */
export const ALERT_VERSION = 1;
export const ALERT_UNSUPPORTED_SUITE = 2;

// Field sizes (RFC 7748 §6.1 for X25519, FIPS 203 Table 3 for ML-KEM-768, RFC 8032 for Ed25519).
export const NONCE_LEN = 32;
export const X25519_PUB_LEN = 32;
export const MLKEM_EK_LEN = 1184;
export const MLKEM_CT_LEN = 1088;
export const ED25519_PUB_LEN = 32;
export const ED25519_SIG_LEN = 64;
export const TAG_LEN = 16;
/** The encrypted identity block: Ed25519 public key ‖ signature, sealed with AES-256-GCM. */
export const SEALED_IDENTITY_LEN = ED25519_PUB_LEN + ED25519_SIG_LEN + TAG_LEN;

/** Body length of message 1 (after the header) for an offered suite set. */
export function helloBodyLen(offer: number): number {
  return NONCE_LEN + X25519_PUB_LEN + (offer & SUITE_BITS['hybrid-x25519-mlkem768'] ? MLKEM_EK_LEN : 0);
}

/** Length of message 2's clear part (after the header, before the sealed identity) for a chosen suite. */
export function responseClearLen(suite: CipherSuite): number {
  return NONCE_LEN + X25519_PUB_LEN + (suite === 'hybrid-x25519-mlkem768' ? MLKEM_CT_LEN : 0);
}

export interface Header {
  version: number;
  type: number;
  param: number;
}

/** `MMPQ ‖ version ‖ type ‖ param ‖ 0x00`. */
export function encodeHeader(type: number, param: number): Uint8Array {
  const out = new Uint8Array(HEADER_LEN);
  out.set(MAGIC, 0);
  out[4] = PQ_PROTOCOL_VERSION;
  out[5] = type;
  out[6] = param;
  out[7] = 0;
  return out;
}

/**
 * Parses a header. A wrong magic or version is reason `version` (the peer speaks something else); a non-zero
 * reserved byte is `malformed`. The message type is checked by the caller, which knows what it expects.
 */
export function parseHeader(bytes: Uint8Array): Header {
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i])
      throw new HandshakeError('version', 'peer does not speak mmogit-pq (bad magic)');
  }
  const version = bytes[4] as number;
  const type = bytes[5] as number;
  const param = bytes[6] as number;
  if (version !== PQ_PROTOCOL_VERSION) {
    throw new HandshakeError('version', `peer speaks version ${version}, we speak ${PQ_PROTOCOL_VERSION}`, {
      details: { peerVersion: version },
    });
  }
  if (bytes[7] !== 0) throw new HandshakeError('malformed', 'reserved header byte is not zero');
  return { version, type, param };
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
