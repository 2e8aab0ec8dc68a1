// The two ML-KEM-768 back ends (src/pqc/_mlkem.ts) are the same FIPS 203 function: the same key from the same
// seed, and each decapsulates what the other encapsulated. Where this Node has no ML-KEM (Node 20 and 22) only
// the noble back end exists and the cross checks are skipped; the CI's Node 24 run does them.
import * as nodeCrypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MLKEM_BACKEND, mlkemBackends } from '../../src/pqc/_mlkem.js';
import { propertyParams } from '../helpers/property.js';

const { noble, node } = mlkemBackends();
const hasNativeKem = typeof (nodeCrypto as { encapsulate?: unknown }).encapsulate === 'function';
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

describe('ML-KEM-768 back ends', () => {
  it(`this process uses Node's ML-KEM exactly when Node has it (${process.version}: ${MLKEM_BACKEND})`, () => {
    expect(MLKEM_BACKEND).toBe(hasNativeKem ? 'node' : 'noble');
    expect(node === null).toBe(!hasNativeKem);
  });

  it('noble round trip and its modulus check (FIPS 203 §7.2)', () => {
    const kp = noble.keygen(new Uint8Array(64).fill(7));
    expect(kp.publicKey.length).toBe(1184);
    const enc = noble.encapsulate(kp.publicKey);
    expect(enc?.cipherText.length).toBe(1088);
    expect(eq(noble.decapsulate(enc!.cipherText, kp.secretKey), enc!.sharedSecret)).toBe(true);
    expect(noble.encapsulate(new Uint8Array(1184).fill(0xff))).toBeNull();
  });

  describe.skipIf(!node)("Node's ML-KEM against noble (needs Node 24.7+ with OpenSSL 3.5)", () => {
    it('property: the same seed gives the same encapsulation key, and each side decapsulates the other', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (seed) => {
          const a = node!.keygen(seed);
          const b = noble.keygen(seed);
          expect(eq(a.publicKey, b.publicKey)).toBe(true);
          const toNode = noble.encapsulate(a.publicKey)!;
          expect(eq(node!.decapsulate(toNode.cipherText, a.secretKey), toNode.sharedSecret)).toBe(true);
          const toNoble = node!.encapsulate(b.publicKey)!;
          expect(toNoble.cipherText.length).toBe(1088);
          expect(eq(noble.decapsulate(toNoble.cipherText, b.secretKey), toNoble.sharedSecret)).toBe(true);
        }),
        propertyParams('ml-kem node ↔ noble', { numRuns: 20 }),
      );
    });

    it('refuses an encapsulation key that fails the modulus check, or has the wrong length', () => {
      expect(node!.encapsulate(new Uint8Array(1184).fill(0xff))).toBeNull();
      expect(node!.encapsulate(new Uint8Array(1183))).toBeNull();
    });

    it('a tampered ciphertext decapsulates to an unrelated secret on both (implicit rejection)', () => {
      const seed = new Uint8Array(64).fill(3);
      const a = node!.keygen(seed);
      const b = noble.keygen(seed);
      const enc = node!.encapsulate(a.publicKey)!;
      const bad = new Uint8Array(enc.cipherText);
      bad[10]! ^= 1;
      const fromNode = node!.decapsulate(bad, a.secretKey);
      expect(eq(fromNode, enc.sharedSecret)).toBe(false);
      expect(eq(fromNode, noble.decapsulate(bad, b.secretKey))).toBe(true);
    });
  });
});
