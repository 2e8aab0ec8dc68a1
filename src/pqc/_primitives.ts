/**
 * The primitives the channel is built from, behind small functions: X25519 and AES-256-GCM from Node's crypto
 * (OpenSSL, 20–80× faster than pure JS here), ML-KEM-768 from noble (FIPS 203), HKDF-SHA256 (RFC 5869).
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';

// RFC 8410 SPKI wrapper of a raw X25519 public key (OID 1.3.101.110).
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519Ephemeral {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

/** A fresh X25519 key pair (RFC 7748 §6.1); the private half never leaves its KeyObject. */
export function x25519Ephemeral(): X25519Ephemeral {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(der.subarray(der.length - 32)) };
}

/**
 * X25519 shared secret. Returns null for a public key that is not a point or a low-order point giving the
 * all-zero secret (RFC 7748 §6.1 "check ... is not all-zero").
 */
export function x25519Shared(privateKey: KeyObject, peerPublic: Uint8Array): Uint8Array | null {
  let shared: Uint8Array;
  try {
    const pub = createPublicKey({
      key: Buffer.concat([SPKI_X25519_PREFIX, peerPublic]),
      format: 'der',
      type: 'spki',
    });
    shared = new Uint8Array(diffieHellman({ privateKey, publicKey: pub }));
  } catch {
    return null;
  }
  let acc = 0;
  for (const b of shared) acc |= b;
  return acc === 0 ? null : shared;
}

export interface MlKemKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** ML-KEM-768 key pair from 64 bytes of OS randomness (FIPS 203 §7.1 ML-KEM.KeyGen). */
export function mlkemKeygen(): MlKemKeyPair {
  const seed = new Uint8Array(randomBytes(64));
  try {
    return ml_kem768.keygen(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * Encapsulates to `publicKey` (FIPS 203 §7.2, including the modulus input check). Returns null for an
 * encapsulation key that fails the check.
 */
export function mlkemEncapsulate(
  publicKey: Uint8Array,
): { cipherText: Uint8Array; sharedSecret: Uint8Array } | null {
  const m = new Uint8Array(randomBytes(32));
  try {
    return ml_kem768.encapsulate(publicKey, m);
  } catch {
    return null;
  } finally {
    m.fill(0);
  }
}

/** Decapsulates (FIPS 203 §7.3); a tampered ciphertext yields an unrelated secret (implicit rejection). */
export function mlkemDecapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ml_kem768.decapsulate(cipherText, secretKey);
}

/** HKDF-SHA256 (RFC 5869) with a text `info`. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string, length = 32): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, Buffer.from(info, 'ascii'), length));
}

/** 96-bit GCM nonce from a 64-bit counter: 4 zero bytes ‖ counter big-endian (as TLS 1.3 §5.3 with a zero IV). */
export function counterNonce(counter: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
  iv.writeUInt32BE(counter >>> 0, 8);
  return iv;
}

/** AES-256-GCM seal: ciphertext ‖ 16-byte tag. */
export function seal(key: Uint8Array, counter: number, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, counterNonce(counter));
  c.setAAD(aad);
  const body = c.update(plaintext);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

/** AES-256-GCM open of ciphertext ‖ tag; null when authentication fails. */
export function open(
  key: Uint8Array,
  counter: number,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  if (sealed.length < 16) return null;
  const d = createDecipheriv('aes-256-gcm', key, counterNonce(counter));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    d.final();
  } catch {
    body.fill(0);
    return null;
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.length);
}

/** Overwrites secrets we no longer need (best effort: JS may have copied them). */
export function wipe(...arrays: (Uint8Array | undefined | null)[]): void {
  for (const a of arrays) a?.fill(0);
}
