import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { MmogitError } from '../errors.js';
import type { CanonicalValue } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey, parseOnionAddress } from '../identity/onion.js';
import { hkdf, open, seal, wipe, x25519Ephemeral, x25519Shared } from '../pqc/_primitives.js';
import { type DecodedEntry, decodeEntry, type EncodedEntry, type Entry, signEntry } from './entry.js';

/**
 * Sealed envelopes: a private entry shared with chosen peers travels on the public branch as one `sealed` entry
 * per recipient, whose body is the private entry's file bytes encrypted to that recipient's X25519 key (derived
 * from its Ed25519 identity key). Signed by the author like every entry; only the recipient can open it.
 * Format `mmogit-sealed` version 1: docs/protocol.md §3, Sharing private entries.
 * @module
 */

/** Entry kind of an encrypted envelope (public, on `main`). */
export const SEALED_KIND = 'sealed';
/** Entry kind of the author's local record of whom an entry was shared with (private, never synced). */
export const SHARE_KIND = 'share';
export const SEALED_FORMAT = 'mmogit-sealed';
export const SEALED_VERSION = 1;
/** The only suite of version 1: ephemeral-static X25519, HKDF-SHA256, AES-256-GCM. */
export const SEALED_SUITE = 'x25519-hkdf-sha256-aes256gcm';
/** Domain-separation label of the key derivation and the AEAD's associated data. */
const LABEL = 'mmogit-sealed/v1';
/** Most recipients one share may name. */
export const MAX_SHARE_RECIPIENTS = 64;

/** Body of a `sealed` entry. */
export interface SealedBody {
  format: typeof SEALED_FORMAT;
  version: typeof SEALED_VERSION;
  suite: typeof SEALED_SUITE;
  /** Recipient's Ed25519 public key, hex. */
  to: string;
  /** Sender's ephemeral X25519 public key, hex. */
  ephemeral: string;
  /** AES-256-GCM ciphertext ‖ tag of the inner entry's file bytes, base64 (padded, canonical). */
  ciphertext: string;
}

/** Body of a `share` entry (the author's own, private). */
export interface ShareBody {
  /** Id of the private entry that was shared. */
  entry: string;
  /** Recipients' onion addresses, sorted. */
  with: string[];
}

const HEX64_RE = /^[0-9a-f]{64}$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ONION_RE = /^[a-z2-7]{56}\.onion$/;

/** Why a `sealed` body is malformed, or null. Checked by {@link decodeEntry} (so sync refuses a bad one). */
export function sealedBodyProblem(body: Record<string, unknown>): string | null {
  if (Object.keys(body).sort().join(',') !== 'ciphertext,ephemeral,format,suite,to,version') {
    return 'sealed body has unexpected fields';
  }
  if (body.format !== SEALED_FORMAT || body.version !== SEALED_VERSION) return 'unknown sealed format';
  if (body.suite !== SEALED_SUITE) return 'unknown sealed suite';
  if (typeof body.to !== 'string' || !HEX64_RE.test(body.to)) return 'malformed sealed recipient';
  if (typeof body.ephemeral !== 'string' || !HEX64_RE.test(body.ephemeral)) return 'malformed ephemeral key';
  const ct = body.ciphertext;
  if (typeof ct !== 'string' || ct.length < 24 || !B64_RE.test(ct)) return 'malformed ciphertext';
  // Only the canonical base64 (zero pad bits) of the bytes: one encoding per envelope.
  if (Buffer.from(ct, 'base64').toString('base64') !== ct) return 'malformed ciphertext';
  return null;
}

/** Why a `share` body is malformed, or null. */
export function shareBodyProblem(body: Record<string, unknown>): string | null {
  if (Object.keys(body).sort().join(',') !== 'entry,with') return 'share body has unexpected fields';
  if (typeof body.entry !== 'string' || !HEX64_RE.test(body.entry)) return 'malformed shared entry id';
  const w = body.with;
  if (
    !Array.isArray(w) ||
    w.length === 0 ||
    w.length > MAX_SHARE_RECIPIENTS ||
    !w.every((o, i) => typeof o === 'string' && ONION_RE.test(o) && (i === 0 || (w[i - 1] as string) < o))
  ) {
    return 'malformed share recipients';
  }
  return null;
}

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
    const ct = seal(aeadKey, 0, info, inner.bytes);
    const body: SealedBody = {
      format: SEALED_FORMAT,
      version: SEALED_VERSION,
      suite: SEALED_SUITE,
      to: hex(recipient.publicKey),
      ephemeral: hex(eph.publicKey),
      ciphertext: Buffer.from(ct).toString('base64'),
    };
    return signEntry(key, SEALED_KIND, body as unknown as { [k: string]: CanonicalValue }, {
      visibility: 'public',
      createdAt: inner.entry.createdAt,
    });
  } finally {
    wipe(shared, aeadKey);
  }
}

/** The signed `share` record an author keeps (privately) for an entry it shared. */
export function shareRecord(key: AgentKey, entryId: string, onions: readonly string[]): EncodedEntry {
  const body: ShareBody = { entry: entryId, with: [...new Set(onions)].sort() };
  return signEntry(key, SHARE_KIND, body as unknown as { [k: string]: CanonicalValue }, {
    visibility: 'private',
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
  const body = envelope.body as unknown as SealedBody;
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
    plain = open(aeadKey, 0, info, Buffer.from(body.ciphertext, 'base64'));
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
