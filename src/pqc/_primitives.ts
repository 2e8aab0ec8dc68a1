/**
 * The primitives the channel is built from, behind small functions: X25519 and AES-256-GCM from Node's crypto
 * (OpenSSL, 20–80× faster than pure JS here), ML-KEM-768 (FIPS 203: Node's where it has it, else noble;
 * ./_mlkem.ts), HKDF-SHA256 (RFC 5869).
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { verifySignature } from '../identity/signing.js';

// Raw keys go in as JWK (RFC 8037 OKP): with OpenSSL 3, DER import of a key costs 80–300 µs here, JWK 1–25 µs,
// which is a quarter of the handshake's CPU budget.
function okpPublicKey(crv: 'X25519' | 'Ed25519', raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv, x: Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url') },
    format: 'jwk',
  });
}

/** The X25519 base point, u = 9 (RFC 7748 §4.1), little-endian. */
const BASE_POINT = okpPublicKey('X25519', Uint8Array.of(9, ...new Uint8Array(31)));
export interface X25519Ephemeral {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

/** DER of an X25519 PKCS#8 PrivateKeyInfo up to the 32-byte secret (RFC 8410 §7, OID 1.3.101.110). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/**
 * The `x` member of the private JWKs {@link x25519PrivateJwk} builds: 32 zero bytes. RFC 8037 §2 wants the
 * public key there, which is what we are about to compute; OpenSSL 3.0 (Node 20) derives the public half from
 * `d` and ignores `x`, OpenSSL 3.5 (Node 24) refuses a mismatch. The key object's own public half is therefore
 * never used: the public key is always X25519(secret, 9) computed below.
 */
const JWK_X_PLACEHOLDER = Buffer.alloc(32).toString('base64url');

/** The X25519 private key object of a 32-byte secret via PKCS#8 DER (~380 µs here on Node 20 / OpenSSL 3.0). */
export function x25519PrivatePkcs8(secret: Uint8Array): KeyObject {
  const der = Buffer.concat([
    X25519_PKCS8_PREFIX,
    Buffer.from(secret.buffer, secret.byteOffset, secret.length),
  ]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** The same via a JWK with a placeholder `x` (~45 µs on Node 20); throws where OpenSSL checks `x`. */
export function x25519PrivateJwk(secret: Uint8Array): KeyObject {
  const d = Buffer.from(secret.buffer, secret.byteOffset, secret.length).toString('base64url');
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: JWK_X_PLACEHOLDER }, format: 'jwk' });
}

/**
 * Which import this process uses, decided once: the JWK one if it turns RFC 7748 §6.1's test secret (Alice's)
 * into the key whose X25519 with the base point is the RFC's public key, else PKCS#8 (any error included).
 */
export const X25519_IMPORT: 'jwk' | 'pkcs8' = (() => {
  const secret = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  const expected = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  try {
    const key = x25519PrivateJwk(secret);
    return diffieHellman({ privateKey: key, publicKey: BASE_POINT }).toString('hex') === expected
      ? 'jwk'
      : 'pkcs8';
  } catch {
    return 'pkcs8';
  }
})();
const importX25519 = X25519_IMPORT === 'jwk' ? x25519PrivateJwk : x25519PrivatePkcs8;

/**
 * The X25519 key pair of a 32-byte secret (RFC 7748 §6.1: the public key is X25519(secret, 9)). Used only with
 * fresh randomness ({@link x25519Ephemeral}) and with the RFC's test vectors.
 *
 * No `generateKeyPair*` and no key export on purpose: on Node 20.20.2 / OpenSSL 3.0.19, exporting a key made by
 * `generateKeyPairSync` as JWK deadlocks the process when a garbage collection runs during the export (the
 * export holds the key's mutex while it allocates; the collected key-generation job's destructor takes the
 * same mutex on the same thread). Importing the secret and computing the public key with one DH never
 * touches that mutex path. See docs/decisions.md.
 */
export function x25519FromSecret(secret: Uint8Array): X25519Ephemeral {
  if (secret.length !== 32) throw new RangeError('X25519 secret must be 32 bytes');
  const privateKey = importX25519(secret);
  return { privateKey, publicKey: new Uint8Array(diffieHellman({ privateKey, publicKey: BASE_POINT })) };
}

/** A fresh X25519 key pair from 32 bytes of OS randomness; the private half never leaves its KeyObject. */
export function x25519Ephemeral(): X25519Ephemeral {
  const secret = new Uint8Array(randomBytes(32));
  try {
    return x25519FromSecret(secret);
  } finally {
    secret.fill(0);
  }
}

/**
 * X25519 shared secret. Returns null for a public key that is not a point or a low-order point giving the
 * all-zero secret (RFC 7748 §6.1 "check ... is not all-zero").
 */
export function x25519Shared(privateKey: KeyObject, peerPublic: Uint8Array): Uint8Array | null {
  if (peerPublic.length !== 32) return null;
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey, publicKey: okpPublicKey('X25519', peerPublic) }));
  } catch {
    return null;
  }
  let acc = 0;
  for (const b of shared) acc |= b;
  return acc === 0 ? null : shared;
}

/**
 * Verifies a domain-separated mmogit Ed25519 signature (docs/protocol.md §2: the bytes of
 * `signedBytes(context, message)`): identity's `verifySignature` (JWK key import, false on any bad input).
 */
export const verifyEd25519: typeof verifySignature = verifySignature;

export {
  MLKEM_BACKEND,
  type MlKemKeyPair,
  type MlKemSecretKey,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
} from './_mlkem.js';

/** HKDF-Extract with SHA-256 (RFC 5869 §2.2): PRK = HMAC(salt, IKM). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', salt).update(ikm).digest());
}

/**
 * HKDF-Expand with SHA-256 (RFC 5869 §2.3); a string `info` is ASCII. Plain HMAC calls: Node's `hkdfSync` costs ~80 µs
 * per call here (an OpenSSL KDF fetch each time), HMAC a few µs.
 */
export function hkdfExpand(prk: Uint8Array, info: string | Uint8Array, length = 32): Uint8Array {
  if (length > 255 * 32) throw new RangeError('HKDF-SHA256 output is at most 8160 bytes');
  const infoBytes = typeof info === 'string' ? Buffer.from(info, 'ascii') : info;
  const out = new Uint8Array(length);
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 0, at = 0; at < length; i++) {
    const t = createHmac('sha256', prk)
      .update(prev)
      .update(infoBytes)
      .update(Uint8Array.of(i + 1))
      .digest();
    out.set(t.subarray(0, Math.min(32, length - at)), at);
    at += 32;
    wipe(prev);
    prev = t;
  }
  wipe(prev);
  return out;
}

/** HKDF-SHA256 (RFC 5869 §2): Extract then Expand. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string | Uint8Array, length = 32): Uint8Array {
  const prk = hkdfExtract(salt, ikm);
  try {
    return hkdfExpand(prk, info, length);
  } finally {
    wipe(prk);
  }
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

/**
 * Overwrites secrets we no longer need (best effort: JS may have copied them). A `KeyObject`'s bytes live in
 * OpenSSL, which clears them when the object is collected; there is nothing to overwrite from here.
 */
export function wipe(...arrays: (Uint8Array | KeyObject | undefined | null)[]): void {
  for (const a of arrays) if (a instanceof Uint8Array) a.fill(0);
}
