/**
 * ML-KEM-768 (FIPS 203) with two interchangeable back ends, chosen once per process:
 * - Node's own (OpenSSL 3.5: Node 24 and later), `crypto.encapsulate` / `crypto.decapsulate`: keygen + encaps +
 *   decaps ~0.2 ms here;
 * - @noble/post-quantum (pure JS, every Node line we support): ~1.7 ms for the same three.
 * The wire bytes are FIPS 203's either way (a 1,184-byte encapsulation key, a 1,088-byte ciphertext, a 32-byte
 * secret), so a peer never learns which one we use; test/pqc/mlkem.test.ts checks both directions.
 * @module
 */
import * as nodeCrypto from 'node:crypto';
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';

/** The decapsulation key: a Node `KeyObject` (its bytes live in OpenSSL) or noble's 2,400-byte form. */
export type MlKemSecretKey = KeyObject | Uint8Array;

export interface MlKemKeyPair {
  publicKey: Uint8Array;
  secretKey: MlKemSecretKey;
}

export interface MlKemEncapsulation {
  cipherText: Uint8Array;
  sharedSecret: Uint8Array;
}

interface Backend {
  name: 'node' | 'noble';
  keygen(seed: Uint8Array): MlKemKeyPair;
  encapsulate(publicKey: Uint8Array): MlKemEncapsulation | null;
  decapsulate(cipherText: Uint8Array, secretKey: MlKemSecretKey): Uint8Array;
}

const EK_LEN = 1184;

/**
 * DER prefixes of ML-KEM-768 keys (OID 2.16.840.1.101.3.4.4.2, the IETF LAMPS ML-KEM certificates draft):
 * a PKCS#8 PrivateKeyInfo holding the 64-byte seed d ‖ z (the `seed [0]` choice), and a SubjectPublicKeyInfo
 * up to the raw encapsulation key. Importing the seed, rather than calling `generateKeyPairSync`, keeps the key
 * the FIPS 203 §7.1 function of our own randomness (so noble and OpenSSL give the same key for the same seed) and
 * stays off the key-generation-job path that deadlocks Node 20 on export (docs/decisions.md, X25519).
 */
const PKCS8_SEED_PREFIX = Buffer.from('3054020100300b060960864801650304040204428040', 'hex');
const SPKI_PREFIX = Buffer.from('308204b2300b0609608648016503040402038204a100', 'hex');

const noble: Backend = {
  name: 'noble',
  keygen: (seed) => ml_kem768.keygen(seed),
  encapsulate(publicKey) {
    const m = new Uint8Array(randomBytes(32));
    try {
      return ml_kem768.encapsulate(publicKey, m);
    } catch {
      return null; // FIPS 203 §7.2 modulus check failed
    } finally {
      m.fill(0);
    }
  },
  decapsulate(cipherText, secretKey) {
    if (!(secretKey instanceof Uint8Array))
      throw new TypeError('noble ML-KEM needs its own secret-key bytes');
    return ml_kem768.decapsulate(cipherText, secretKey);
  },
};

// `encapsulate`/`decapsulate` exist from Node 24.7; the types of older Nodes do not name them.
type KemFns = {
  encapsulate?: (key: KeyObject) => { sharedKey: Buffer; ciphertext: Buffer };
  decapsulate?: (key: KeyObject, ciphertext: Uint8Array) => Buffer;
};
const kemFns = nodeCrypto as unknown as KemFns;

function nativeBackend(
  encapsulate: NonNullable<KemFns['encapsulate']>,
  decapsulate: NonNullable<KemFns['decapsulate']>,
): Backend {
  return {
    name: 'node',
    keygen(seed) {
      const der = Buffer.concat([PKCS8_SEED_PREFIX, seed]);
      try {
        const secretKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
        const spki = createPublicKey(secretKey).export({ format: 'der', type: 'spki' });
        return { publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)), secretKey };
      } finally {
        der.fill(0);
      }
    },
    encapsulate(publicKey) {
      if (publicKey.length !== EK_LEN) return null;
      let key: KeyObject;
      try {
        // OpenSSL runs FIPS 203 §7.2's modulus check on import: a key that fails it throws here
        key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
      } catch {
        return null;
      }
      const { sharedKey, ciphertext } = encapsulate(key);
      return { cipherText: new Uint8Array(ciphertext), sharedSecret: new Uint8Array(sharedKey) };
    },
    decapsulate(cipherText, secretKey) {
      if (secretKey instanceof Uint8Array) return noble.decapsulate(cipherText, secretKey);
      return new Uint8Array(decapsulate(secretKey, cipherText));
    },
  };
}

/** Node's back end where this Node has ML-KEM (Node 24.7+), else null. */
const nodeCandidate: Backend | null = (() => {
  const { encapsulate, decapsulate } = kemFns;
  return typeof encapsulate === 'function' && typeof decapsulate === 'function'
    ? nativeBackend(encapsulate, decapsulate)
    : null;
})();

/**
 * Node's back end where it exists and agrees with noble on a fixed seed (the same encapsulation key, and a
 * secret noble encapsulated decapsulates to the same bytes); noble otherwise, any error included.
 */
function choose(): Backend {
  const native = nodeCandidate;
  if (native === null) return noble;
  try {
    const seed = new Uint8Array(64).map((_, i) => i);
    const a = native.keygen(seed);
    const b = noble.keygen(seed);
    if (Buffer.compare(a.publicKey, b.publicKey) !== 0) return noble;
    const enc = noble.encapsulate(b.publicKey);
    if (!enc || Buffer.compare(native.decapsulate(enc.cipherText, a.secretKey), enc.sharedSecret) !== 0) {
      return noble;
    }
    return native;
  } catch {
    return noble;
  }
}

const backend = choose();

/** Which ML-KEM implementation this process uses. */
export const MLKEM_BACKEND: 'node' | 'noble' = backend.name;

/** ML-KEM-768 key pair from 64 bytes of OS randomness (FIPS 203 §7.1 ML-KEM.KeyGen). */
export function mlkemKeygen(): MlKemKeyPair {
  const seed = new Uint8Array(randomBytes(64));
  try {
    return backend.keygen(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * Encapsulates to `publicKey` (FIPS 203 §7.2, including the modulus input check). Returns null for an
 * encapsulation key that fails the check.
 */
export function mlkemEncapsulate(publicKey: Uint8Array): MlKemEncapsulation | null {
  return backend.encapsulate(publicKey);
}

/** Decapsulates (FIPS 203 §7.3); a tampered ciphertext yields an unrelated secret (implicit rejection). */
export function mlkemDecapsulate(cipherText: Uint8Array, secretKey: MlKemSecretKey): Uint8Array {
  return backend.decapsulate(cipherText, secretKey);
}

/** Both back ends, for the interoperability test; `node` is null where this Node has no ML-KEM. */
export function mlkemBackends(): { noble: Backend; node: Backend | null } {
  return { noble, node: nodeCandidate };
}
