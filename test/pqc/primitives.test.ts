import { createPrivateKey, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { SIGNING_CONTEXTS } from '../../src/identity/signing.js';
import {
  hkdf,
  hkdfExpand,
  hkdfExtract,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
  open,
  seal,
  verifyEd25519,
  X25519_IMPORT,
  x25519Ephemeral,
  x25519FromSecret,
  x25519PrivateJwk,
  x25519PrivatePkcs8,
  x25519Shared,
} from '../../src/pqc/_primitives.js';
import { propertyParams } from '../helpers/property.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/pqc/kdf-x25519.json', import.meta.url), 'utf8'));
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('pqc primitives', () => {
  it('HKDF-SHA256 matches RFC 5869 A.1', () => {
    const v = vectors.hkdf_sha256;
    const prk = hkdfExtract(hex(v.salt), hex(v.ikm));
    expect(toHex(prk)).toBe(v.prk);
    expect(toHex(hkdfExpand(prk, hex(v.info), v.length))).toBe(v.okm);
  });

  it('HKDF-SHA256 matches node:crypto hkdfSync on random inputs', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x')),
        fc.integer({ min: 1, max: 100 }),
        (ikm, salt, info, len) => {
          const ours = hkdf(ikm, salt, info, len);
          const node = new Uint8Array(hkdfSync('sha256', ikm, salt, Buffer.from(info, 'ascii'), len));
          expect(toHex(ours)).toBe(toHex(node));
        },
      ),
    );
  });

  it('X25519 matches RFC 7748 §6.1 (JWK import path)', () => {
    const v = vectors.x25519;
    const priv = (d: string, x: string) =>
      createPrivateKey({
        key: {
          kty: 'OKP',
          crv: 'X25519',
          d: Buffer.from(d, 'hex').toString('base64url'),
          x: Buffer.from(x, 'hex').toString('base64url'),
        },
        format: 'jwk',
      });
    const alice = priv(v.alice_private, v.alice_public);
    const bob = priv(v.bob_private, v.bob_public);
    expect(toHex(x25519Shared(alice, hex(v.bob_public)) as Uint8Array)).toBe(v.shared);
    expect(toHex(x25519Shared(bob, hex(v.alice_public)) as Uint8Array)).toBe(v.shared);
  });

  it('X25519 key pairs from a secret match RFC 7748 §6.1 (public key = X25519(secret, 9))', () => {
    const v = vectors.x25519;
    const alice = x25519FromSecret(hex(v.alice_private));
    const bob = x25519FromSecret(hex(v.bob_private));
    expect(toHex(alice.publicKey)).toBe(v.alice_public);
    expect(toHex(bob.publicKey)).toBe(v.bob_public);
    expect(toHex(x25519Shared(alice.privateKey, bob.publicKey) as Uint8Array)).toBe(v.shared);
    expect(() => x25519FromSecret(new Uint8Array(31))).toThrow(RangeError);
  });

  it('property: X25519 public keys agree with noble for any secret', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
        expect(toHex(x25519FromSecret(secret).publicKey)).toBe(toHex(x25519.getPublicKey(secret)));
      }),
      propertyParams('x25519 vs noble', { numRuns: 200 }),
    );
  });

  it('property: both X25519 private-key imports (JWK with a placeholder x, PKCS#8) give the same DH', () => {
    // The JWK path is used only where the one-time RFC 7748 check at load passed; whichever path this Node
    // picked, the other (when it imports at all) must agree with it and with noble for every secret.
    expect(['jwk', 'pkcs8']).toContain(X25519_IMPORT);
    const peer = x25519Ephemeral();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
        const want = toHex(x25519.getSharedSecret(secret, peer.publicKey));
        expect(toHex(x25519Shared(x25519PrivatePkcs8(secret), peer.publicKey) ?? new Uint8Array())).toBe(
          want,
        );
        if (X25519_IMPORT === 'jwk') {
          expect(toHex(x25519Shared(x25519PrivateJwk(secret), peer.publicKey) ?? new Uint8Array())).toBe(
            want,
          );
        }
      }),
      propertyParams('x25519 jwk vs pkcs8', { numRuns: 100 }),
    );
  });

  it('X25519 refuses low-order points and wrong lengths', () => {
    const e = x25519Ephemeral();
    expect(x25519Shared(e.privateKey, new Uint8Array(32))).toBeNull(); // the zero point
    expect(x25519Shared(e.privateKey, Uint8Array.of(1, ...new Uint8Array(31)))).toBeNull(); // order 1... gives 0
    expect(x25519Shared(e.privateKey, new Uint8Array(31))).toBeNull();
    const f = x25519Ephemeral();
    expect(toHex(x25519Shared(e.privateKey, f.publicKey) as Uint8Array)).toBe(
      toHex(x25519Shared(f.privateKey, e.publicKey) as Uint8Array),
    );
  });

  it('ML-KEM-768 round trip; a bad encapsulation key is refused', () => {
    const kp = mlkemKeygen();
    expect(kp.publicKey).toHaveLength(1184);
    const enc = mlkemEncapsulate(kp.publicKey);
    expect(enc?.cipherText).toHaveLength(1088);
    expect(toHex(mlkemDecapsulate(enc!.cipherText, kp.secretKey))).toBe(toHex(enc!.sharedSecret));
    // FIPS 203 §7.2 modulus check: coefficients ≥ q (all 0xff bytes) are invalid.
    expect(mlkemEncapsulate(new Uint8Array(1184).fill(0xff))).toBeNull();
  });

  it('Ed25519 verification with the JWK path agrees with AgentKey signatures', () => {
    const key = AgentKey.random();
    const msg = new Uint8Array(randomBytes(64));
    const sig = key.sign(SIGNING_CONTEXTS.handshake, msg);
    expect(verifyEd25519(SIGNING_CONTEXTS.handshake, msg, sig, key.publicKey)).toBe(true);
    expect(key.verify(SIGNING_CONTEXTS.handshake, msg, sig)).toBe(true);
    expect(verifyEd25519(SIGNING_CONTEXTS.message, msg, sig, key.publicKey)).toBe(false);
    sig[0] = (sig[0] as number) ^ 1;
    expect(verifyEd25519(SIGNING_CONTEXTS.handshake, msg, sig, key.publicKey)).toBe(false);
    expect(verifyEd25519(SIGNING_CONTEXTS.handshake, msg, sig.subarray(1), key.publicKey)).toBe(false);
  });

  it('AES-256-GCM seal/open; any change is detected', () => {
    const k = new Uint8Array(randomBytes(32));
    const aad = Uint8Array.of(1, 2);
    const sealed = seal(k, 7, aad, Uint8Array.of(9, 8, 7));
    expect(Array.from(open(k, 7, aad, sealed) as Uint8Array)).toEqual([9, 8, 7]);
    expect(open(k, 8, aad, sealed)).toBeNull();
    expect(open(k, 7, Uint8Array.of(1, 3), sealed)).toBeNull();
    sealed[0] = (sealed[0] as number) ^ 1;
    expect(open(k, 7, aad, sealed)).toBeNull();
  });
});
