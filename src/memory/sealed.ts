import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey, parseOnionAddress } from '../identity/onion.js';
import { aeadOpen, aeadSeal, hkdf, wipe, x25519Ephemeral, x25519Shared } from '../pqc/index.js';
import { type DecodedEntry, decodeEntry, type EncodedEntry, type Entry, signEntry } from './entry.js';
import {
  isSealedBody,
  SEALED_FORMAT,
  SEALED_KIND,
  SEALED_SUITE,
  SEALED_VERSION,
  type SealedBody,
  SHARE_KIND,
  type ShareBody,
} from './entry-kinds.js';

/**
 * Sealed envelopes: a private entry shared with chosen peers travels on the public branch as one `sealed` entry
 * per recipient, whose body is the private entry's file bytes encrypted to that recipient's X25519 key (derived
 * from its Ed25519 identity key). Signed by the author like every entry; only the recipient can open it.
 * Format `mmogit-sealed` version 1: docs/protocol.md §3, Sharing private entries.
 * @module
 */

/** Domain-separation label of the key derivation and the AEAD's associated data. */
const LABEL = 'mmogit-sealed/v1';
const HEX64_RE = /^[0-9a-f]{64}$/;

/** A recipient: its Ed25519 public key and the X25519 key derived from it. */
export interface Recipient {
  publicKey: Uint8Array;
  onion: string;
  x25519: Uint8Array;
}

/**
 * Resolves a peer named by onion address or hex Ed25519 public key. Throws ERR_INVALID_ONION /
 * ERR_INVALID_ARGUMENT for a malformed name or a key that is not a curve point.
 */
export function recipientOf(peer: string): Recipient {
  const publicKey =
    typeof peer === 'string' && HEX64_RE.test(peer)
      ? new Uint8Array(Buffer.from(peer, 'hex'))
      : parseOnionAddress(peer).publicKey;
  return { publicKey, onion: onionFromPublicKey(publicKey), x25519: montgomery(publicKey) };
}

/** Ed25519 public key → X25519 public key (the birational map of RFC 7748 §4.1, libsodium's `pk_to_curve25519`). */
function montgomery(edPublicKey: Uint8Array): Uint8Array {
  try {
    return ed25519.utils.toMontgomery(edPublicKey);
  } catch (e) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'recipient key is not an Ed25519 point', { cause: e });
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** info = label ‖ 0x00 ‖ sender Ed25519 ‖ recipient Ed25519 ‖ ephemeral: a key for one envelope, one pair. */
function binding(sender: Uint8Array, recipient: Uint8Array, ephemeral: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`${LABEL}\0`, 'ascii'), sender, recipient, ephemeral]);
}

/**
 * Seals the private entry `inner` (signed by `key`) to `recipient`: returns the signed, public `sealed` entry.
 * Throws ERR_TOO_LARGE when the envelope would exceed the entry size limit (inner entries up to ≈ 48 KiB fit).
 */
export function sealEntry(key: AgentKey, inner: EncodedEntry, recipient: Recipient): EncodedEntry {
  const eph = x25519Ephemeral();
  const shared = x25519Shared(eph.privateKey, recipient.x25519);
  if (!shared) throw new MmogitError('ERR_INVALID_ARGUMENT', 'recipient key is a low-order point');
  const info = binding(key.publicKey, recipient.publicKey, eph.publicKey);
  const aeadKey = hkdf(shared, Buffer.concat([eph.publicKey, recipient.x25519]), info);
  try {
    // The key is fresh per envelope (new ephemeral), so the fixed nonce 0 is used exactly once.
    const ct = aeadSeal(aeadKey, 0, info, inner.bytes);
    const body: SealedBody = {
      format: SEALED_FORMAT,
      version: SEALED_VERSION,
      suite: SEALED_SUITE,
      to: hex(recipient.publicKey),
      ephemeral: hex(eph.publicKey),
      ciphertext: Buffer.from(ct).toString('base64'),
    };
    return signEntry(key, SEALED_KIND, body, {
      visibility: 'public',
      createdAt: inner.entry.createdAt,
    });
  } finally {
    wipe(shared, aeadKey);
  }
}

/** The signed `share` record an author keeps (privately) for an entry it shared. */
export function shareRecord(
  key: AgentKey,
  entryId: string,
  onions: readonly string[],
  createdAt: string | Date = new Date(),
): EncodedEntry {
  const body: ShareBody = { entry: entryId, with: [...new Set(onions)].sort() };
  return signEntry(key, SHARE_KIND, body, {
    visibility: 'private',
    createdAt,
  });
}

/** The recipient side: our X25519 secret as a KeyObject, derived from the identity seed. */
export function openerFor(key: AgentKey): KeyObject {
  const expanded = key.expandedSecret();
  try {
    // The clamped scalar of the expanded Ed25519 key is the X25519 secret (libsodium's sk_to_curve25519).
    const scalar = expanded.subarray(0, 32);
    return createPrivateKey({
      key: {
        kty: 'OKP',
        crv: 'X25519',
        d: Buffer.from(scalar).toString('base64url'),
        x: Buffer.from(ed25519.utils.toMontgomery(key.publicKey)).toString('base64url'),
      },
      format: 'jwk',
    });
  } finally {
    wipe(expanded);
  }
}

/** What opening an envelope gave: the inner entry (verified or not), or only a problem. */
export interface OpenedEnvelope {
  /** The inner entry, decoded and fully checked (its `verified`/`problem` say how it went). */
  inner: DecodedEntry | null;
  /** Why the envelope could not be opened or the inner entry is not acceptable. */
  problem?: string;
}

/**
 * Opens a `sealed` entry addressed to `key` (the envelope itself must already be verified): decrypts, then checks
 * the inner entry completely (format, canonical form, signature), that its author is the envelope's author and
 * that it is a private entry. Never throws for bad data.
 */
export function openEnvelope(key: AgentKey, opener: KeyObject, envelope: Entry): OpenedEnvelope {
  const body = envelope.body;
  // decodeEntry already refused a malformed body; the guard keeps that a checked fact here, not a cast.
  if (!isSealedBody(body)) return { inner: null, problem: 'malformed sealed body' };
  if (body.to !== key.publicKeyHex) return { inner: null, problem: 'sealed to another peer' };
  const ephemeral = new Uint8Array(Buffer.from(body.ephemeral, 'hex'));
  const shared = x25519Shared(opener, ephemeral);
  if (!shared) return { inner: null, problem: 'sealed entry has an invalid ephemeral key' };
  const sender = new Uint8Array(Buffer.from(envelope.author, 'hex'));
  const info = binding(sender, key.publicKey, ephemeral);
  const myX = ed25519.utils.toMontgomery(key.publicKey);
  const aeadKey = hkdf(shared, Buffer.concat([ephemeral, myX]), info);
  let plain: Uint8Array | null;
  try {
    plain = aeadOpen(aeadKey, 0, info, Buffer.from(body.ciphertext, 'base64'));
  } finally {
    wipe(shared, aeadKey);
  }
  if (!plain)
    return { inner: null, problem: 'sealed entry does not decrypt (tampered, or not by its author)' };
  const inner = decodeEntry(plain);
  if (!inner.verified || !inner.entry) {
    return { inner, problem: `sealed inner entry is invalid: ${inner.problem}` };
  }
  if (inner.entry.author !== envelope.author) {
    return { inner, problem: 'sealed inner entry is by another author than its envelope' };
  }
  if (inner.entry.visibility !== 'private') return { inner, problem: 'sealed inner entry is not private' };
  if (inner.entry.kind === SEALED_KIND || inner.entry.kind === SHARE_KIND) {
    return { inner, problem: `sealed inner entry is a ${inner.entry.kind} entry` };
  }
  return { inner };
}
