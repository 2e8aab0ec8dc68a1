import { createHash } from 'node:crypto';
import base32 from 'hi-base32';
import { describeValue, MmogitError } from '../errors.js';

/** Tor v3 onion address version byte (rend-spec-v3 §6 "Encoding onion addresses"). */
export const ONION_V3_VERSION = 0x03;
/** 56 base32 characters: 35 bytes = pubkey(32) ‖ checksum(2) ‖ version(1). */
export const ONION_V3_LENGTH = 56;

const CHECKSUM_PREFIX = Buffer.from('.onion checksum', 'ascii');

/** The 2-byte checksum: SHA3-256(".onion checksum" ‖ pubkey ‖ version)[:2] (rend-spec-v3 §6). */
export function onionChecksum(publicKey: Uint8Array): Uint8Array {
  const digest = createHash('sha3-256')
    .update(CHECKSUM_PREFIX)
    .update(publicKey)
    .update(Uint8Array.of(ONION_V3_VERSION))
    .digest();
  return new Uint8Array(digest.subarray(0, 2));
}

/**
 * The v3 onion address of an Ed25519 public key, lower case with the `.onion` suffix.
 *
 * @example onionFromPublicKey(pk) // 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion'
 */
export function onionFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32)
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'Ed25519 public key must be 32 bytes');
  const bytes = new Uint8Array(35);
  bytes.set(publicKey, 0);
  bytes.set(onionChecksum(publicKey), 32);
  bytes[34] = ONION_V3_VERSION;
  return `${base32.encode(bytes).toLowerCase()}.onion`;
}

/** A parsed, checked v3 onion address. */
export interface OnionAddress {
  /** 56 lower-case base32 characters, no suffix: tor's ServiceID. */
  serviceId: string;
  /** `<serviceId>.onion` */
  hostname: string;
  publicKey: Uint8Array;
}

function invalid(input: string, why: string): MmogitError {
  const shown = input.length > 80 ? `${input.slice(0, 77)}…` : input;
  return new MmogitError('ERR_INVALID_ONION', `invalid onion address "${shown}": ${why}`, {
    details: { reason: why },
  });
}

/**
 * Parses and verifies a v3 onion address: `<56 base32>` with or without `.onion`, any case. Checks length,
 * alphabet, version byte and checksum (rend-spec-v3 §6). With `expectedPublicKey`, also checks the binding.
 *
 * @throws MmogitError `ERR_INVALID_ONION` naming what is wrong.
 */
export function parseOnionAddress(input: string, expectedPublicKey?: Uint8Array): OnionAddress {
  if (typeof input !== 'string') throw invalid(describeValue(input), 'not a string');
  const trimmed = input.trim().toLowerCase();
  const serviceId = trimmed.endsWith('.onion') ? trimmed.slice(0, -'.onion'.length) : trimmed;
  if (serviceId.length !== ONION_V3_LENGTH) {
    throw invalid(input, `expected ${ONION_V3_LENGTH} base32 characters, got ${serviceId.length}`);
  }
  if (!/^[a-z2-7]+$/.test(serviceId)) throw invalid(input, 'not base32 (a-z, 2-7)');
  const bytes = Uint8Array.from(base32.decode.asBytes(serviceId.toUpperCase()));
  if (bytes.length !== 35) throw invalid(input, 'does not decode to 35 bytes');
  if (bytes[34] !== ONION_V3_VERSION) throw invalid(input, `unsupported version ${bytes[34]}`);
  const publicKey = bytes.slice(0, 32);
  const checksum = onionChecksum(publicKey);
  if (checksum[0] !== bytes[32] || checksum[1] !== bytes[33]) throw invalid(input, 'checksum mismatch');
  if (expectedPublicKey && !Buffer.from(expectedPublicKey).equals(Buffer.from(publicKey))) {
    throw invalid(input, 'does not belong to the expected public key');
  }
  return { serviceId, hostname: `${serviceId}.onion`, publicKey };
}

/** True when `input` is a valid v3 onion address. */
export function isOnionAddress(input: string): boolean {
  try {
    parseOnionAddress(input);
    return true;
  } catch {
    return false;
  }
}

/**
 * Tor's 64-byte "expanded" Ed25519 secret key for a 32-byte seed: SHA-512(seed) with the scalar half clamped
 * (RFC 8032 §5.1.5 steps 1–2). ADD_ONION `ED25519-V3:<base64>` and `hs_ed25519_secret_key` both hold this.
 */
export function expandedSecretKey(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new MmogitError('ERR_INVALID_ARGUMENT', 'Ed25519 seed must be 32 bytes');
  const h = new Uint8Array(createHash('sha512').update(seed).digest());
  h[0] = (h[0] as number) & 248;
  h[31] = ((h[31] as number) & 127) | 64;
  return h;
}

/** ADD_ONION key argument: `ED25519-V3:<base64 of the expanded secret, padded>` (control-spec §3.27). */
export function addOnionKeyBlob(seed: Uint8Array): string {
  return `ED25519-V3:${Buffer.from(expandedSecretKey(seed)).toString('base64')}`;
}

function taggedKeyFile(tag: string, body: Uint8Array): Uint8Array {
  // Tor's key file header: the tag NUL-padded to 32 bytes, then the key (tor src/lib/crypt_ops/crypto_format.c).
  const header = Buffer.alloc(32);
  header.write(tag, 'ascii');
  return new Uint8Array(Buffer.concat([header, body]));
}

/** Contents of a HiddenServiceDir's `hs_ed25519_secret_key` for this seed (96 bytes). */
export function hsSecretKeyFile(seed: Uint8Array): Uint8Array {
  return taggedKeyFile('== ed25519v1-secret: type0 ==', expandedSecretKey(seed));
}

/** Contents of a HiddenServiceDir's `hs_ed25519_public_key` (64 bytes). */
export function hsPublicKeyFile(publicKey: Uint8Array): Uint8Array {
  return taggedKeyFile('== ed25519v1-public: type0 ==', publicKey);
}
