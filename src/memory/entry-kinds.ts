import { describeValue, MmogitError } from '../errors.js';
import { canonicalJson } from '../identity/canonical.js';

/**
 * The entry kinds with rules of their own and their body validators: `memory` (structured memories),
 * `sealed` (an envelope of a shared private entry) and `share` (the author's record of a share). Pure: the
 * entry format (entry.ts) and sealing (sealed.ts) both build on this module, and it on neither.
 * @module
 */

/** Memory types, as in Rust mmogit's structured memories. */
export const MEMORY_TYPES = [
  'observation',
  'learning',
  'relationship',
  'task',
  'experience',
  'reflection',
  'question',
] as const;
export type MemoryType = (typeof MEMORY_TYPES)[number];

/** Limits on memory fields. */
export const MEMORY_LIMITS = { tags: 64, tagLength: 64, references: 256, referenceLength: 256 } as const;
/** Confidence when the caller gives none. */
export const DEFAULT_CONFIDENCE = 0.8;

export type Visibility = 'public' | 'private';

/** Body of a `memory` entry. */
export type MemoryBody = {
  type: MemoryType;
  content: string;
  tags: string[];
  confidence: number;
  references: string[];
  expiresAt?: string;
};

/** What a caller gives to remember something. */
export interface MemoryInput {
  type: MemoryType;
  content: string;
  tags?: string[];
  /** 0..1; default {@link DEFAULT_CONFIDENCE}. */
  confidence?: number;
  /** Ids of other entries (or any URI) this memory refers to. */
  references?: string[];
  /** ISO 8601 time after which recall hides the memory. */
  expiresAt?: string | Date;
  visibility?: Visibility;
  /**
   * Peers (onion addresses or hex Ed25519 public keys) allowed to read this private memory: it stays on the
   * private branch and each of them gets an encrypted `sealed` envelope on the public one. Implies (and
   * requires) `visibility: 'private'`.
   */
  shareWith?: readonly string[];
}

/** Entry kind of an encrypted envelope (public, on `main`). */
export const SEALED_KIND = 'sealed';
/** Entry kind of the author's local record of whom an entry was shared with (private, never synced). */
export const SHARE_KIND = 'share';
export const SEALED_FORMAT = 'mmogit-sealed';
export const SEALED_VERSION = 1;
/** The only suite of version 1: ephemeral-static X25519, HKDF-SHA256, AES-256-GCM. */
export const SEALED_SUITE = 'x25519-hkdf-sha256-aes256gcm';
/** Most recipients one share may name. */
export const MAX_SHARE_RECIPIENTS = 64;

/** Body of a `sealed` entry. */
export type SealedBody = {
  format: typeof SEALED_FORMAT;
  version: typeof SEALED_VERSION;
  suite: typeof SEALED_SUITE;
  /** Recipient's Ed25519 public key, hex. */
  to: string;
  /** Sender's ephemeral X25519 public key, hex. */
  ephemeral: string;
  /** AES-256-GCM ciphertext ‖ tag of the inner entry's file bytes, base64 (padded, canonical). */
  ciphertext: string;
};

/** Body of a `share` entry (the author's own, private). */
export type ShareBody = {
  /** Id of the private entry that was shared. */
  entry: string;
  /** Recipients' onion addresses, sorted. */
  with: string[];
};

const HEX64_RE = /^[0-9a-f]{64}$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ONION_RE = /^[a-z2-7]{56}\.onion$/;

/** The typed error of a memory or entry that breaks a rule. */
export function invalid(message: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError('ERR_INVALID_MEMORY', message, details ? { details } : {});
}

/** A time as ISO 8601 UTC with milliseconds, or ERR_INVALID_MEMORY naming `field`. */
export function isoTime(value: string | Date, field: string): string {
  const d =
    value instanceof Date ? value : typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime())) throw invalid(`${field} is not a valid time`, { field });
  return d.toISOString();
}

function stringList(value: unknown, field: string, max: number, maxLength: number): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(`${field} must be an array of strings`, { field });
  if (value.length > max) throw invalid(`${field} has more than ${max} items`, { field });
  for (const v of value) {
    if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) {
      throw invalid(`${field} items must be non-empty strings of at most ${maxLength} characters`, { field });
    }
  }
  return [...new Set(value as string[])];
}

function isMemoryType(value: unknown): value is MemoryType {
  return (MEMORY_TYPES as readonly unknown[]).includes(value);
}

/**
 * Checks and normalises a memory; throws ERR_INVALID_MEMORY for an unknown type, a confidence outside 0..1, …
 * It takes a caller's input or a stored body alike: every field is checked here, so neither needs a cast.
 */
export function memoryBody(input: MemoryInput | { readonly [key: string]: unknown }): MemoryBody {
  if (typeof input !== 'object' || input === null) throw invalid('memory must be an object');
  const fields: { readonly [K in keyof MemoryInput]?: unknown } = input;
  const { type, content } = fields;
  if (!isMemoryType(type)) {
    throw invalid(`unknown memory type ${JSON.stringify(type)} (one of ${MEMORY_TYPES.join(', ')})`, {
      field: 'type',
    });
  }
  if (typeof content !== 'string' || content.length === 0) {
    throw invalid('memory content must be a non-empty string', { field: 'content' });
  }
  const confidence = fields.confidence ?? DEFAULT_CONFIDENCE;
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
    throw invalid(`confidence must be a number in 0..1, got ${describeValue(fields.confidence)}`, {
      field: 'confidence',
    });
  }
  const body: MemoryBody = {
    type,
    content,
    tags: stringList(fields.tags, 'tags', MEMORY_LIMITS.tags, MEMORY_LIMITS.tagLength),
    confidence,
    references: stringList(
      fields.references,
      'references',
      MEMORY_LIMITS.references,
      MEMORY_LIMITS.referenceLength,
    ),
  };
  const { expiresAt } = fields;
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== 'string' && !(expiresAt instanceof Date)) {
      throw invalid('expiresAt is not a valid time', { field: 'expiresAt' });
    }
    body.expiresAt = isoTime(expiresAt, 'expiresAt');
  }
  return body;
}

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

/** A well-formed `sealed` body: the type guard of {@link sealedBodyProblem}. */
export function isSealedBody(body: Record<string, unknown>): body is SealedBody {
  return sealedBodyProblem(body) === null;
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

/** A well-formed `share` body: the type guard of {@link shareBodyProblem}. */
export function isShareBody(body: Record<string, unknown>): body is ShareBody {
  return shareBodyProblem(body) === null;
}

/**
 * Why an entry's body breaks its kind's rules, or null: a memory body must be normalised, envelopes are public
 * by construction and share records private. Kinds without rules of their own pass.
 */
export function kindProblem(
  kind: string,
  body: { [key: string]: unknown },
  visibility: Visibility,
): string | null {
  if (kind === 'memory') {
    try {
      const b = memoryBody(body);
      if (canonicalJson(b as never) !== canonicalJson(body as never)) return 'memory body is not normalised';
    } catch (err) {
      return `invalid memory body: ${(err as Error).message}`;
    }
    return null;
  }
  if (kind === SEALED_KIND || kind === SHARE_KIND) {
    const problem = kind === SEALED_KIND ? sealedBodyProblem(body) : shareBodyProblem(body);
    if (problem) return problem;
    // Envelopes are public by construction, share records private: anything else is not ours.
    if (visibility !== (kind === SEALED_KIND ? 'public' : 'private'))
      return `${kind} entry with the wrong visibility`;
  }
  return null;
}
