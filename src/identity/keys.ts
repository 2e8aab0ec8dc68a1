import { type KeyObject, randomBytes } from 'node:crypto';
import { MmogitError } from '../errors.js';
import { newMnemonic, seedFromMnemonic } from './mnemonic.js';
import { addOnionKeyBlob, expandedSecretKey, onionFromPublicKey } from './onion.js';
import {
  privateKeyObject,
  rawPublicKey,
  type SigningContext,
  signWithKeyObject,
  verifySignature,
} from './signing.js';

const SECRET = Symbol('secret');

/**
 * An agent's identity: one Ed25519 key from which its .onion address, its libp2p PeerId and all its
 * signatures come. The seed stays inside this object (not enumerable, not serialised by JSON or inspect).
 *
 * @example
 * const { key, mnemonic } = AgentKey.generate();
 * key.onion;                           // '<56 chars>.onion'
 * const sig = key.sign(SIGNING_CONTEXTS.message, bytes);
 */
export class AgentKey {
  readonly publicKey: Uint8Array;
  readonly onion: string;
  declare private readonly [SECRET]: { seed: Uint8Array; keyObject: KeyObject };

  private constructor(seed: Uint8Array) {
    const keyObject = privateKeyObject(seed);
    Object.defineProperty(this, SECRET, {
      value: { seed: Uint8Array.from(seed), keyObject },
      enumerable: false,
    });
    this.publicKey = rawPublicKey(keyObject);
    this.onion = onionFromPublicKey(this.publicKey);
  }

  /** From a 32-byte Ed25519 seed (RFC 8032 secret key). */
  static fromSeed(seed: Uint8Array): AgentKey {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', 'Ed25519 seed must be 32 bytes');
    }
    return new AgentKey(seed);
  }

  /** From a BIP39 phrase of 12–24 words, compatible with RCALabs/mmogit (see {@link seedFromMnemonic}). */
  static fromMnemonic(phrase: string): AgentKey {
    const seed = seedFromMnemonic(phrase);
    try {
      return new AgentKey(seed);
    } finally {
      seed.fill(0);
    }
  }

  /** A new identity with its 24-word phrase (show the phrase to the user once). */
  static generate(): { key: AgentKey; mnemonic: string } {
    const mnemonic = newMnemonic();
    return { key: AgentKey.fromMnemonic(mnemonic), mnemonic };
  }

  /** A throwaway identity not tied to a phrase (tests, benchmarks). */
  static random(): AgentKey {
    return new AgentKey(randomBytes(32));
  }

  /** Lower-case hex of the public key. */
  get publicKeyHex(): string {
    return Buffer.from(this.publicKey).toString('hex');
  }

  /** The onion's ServiceID: the address without `.onion`. */
  get serviceId(): string {
    return this.onion.slice(0, -'.onion'.length);
  }

  /** Domain-separated Ed25519 signature (see docs/protocol.md §2). */
  sign(context: SigningContext, message: Uint8Array): Uint8Array {
    return signWithKeyObject(this[SECRET].keyObject, context, message);
  }

  /** Verifies a signature by this key. */
  verify(context: SigningContext, message: Uint8Array, signature: Uint8Array): boolean {
    return verifySignature(context, message, signature, this.publicKey);
  }

  /** Tor's 64-byte expanded secret key (for ADD_ONION / hs_ed25519_secret_key). Treat as secret. */
  expandedSecret(): Uint8Array {
    return expandedSecretKey(this[SECRET].seed);
  }

  /** The `ED25519-V3:<base64>` key argument of ADD_ONION. Treat as secret; never log it. */
  addOnionKey(): string {
    return addOnionKeyBlob(this[SECRET].seed);
  }

  /**
   * A copy of the 32-byte seed. Only for persisting the identity and for deriving the libp2p private key;
   * the caller should wipe it (`fill(0)`) when done.
   */
  exportSeed(): Uint8Array {
    return Uint8Array.from(this[SECRET].seed);
  }

  /** The seed's Node KeyObject, for Node crypto APIs (e.g. the PQ handshake's signatures). */
  keyObject(): KeyObject {
    return this[SECRET].keyObject;
  }

  toJSON(): { pubkey: string; onion: string } {
    return { pubkey: this.publicKeyHex, onion: this.onion };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `AgentKey(${this.onion})`;
  }
}
