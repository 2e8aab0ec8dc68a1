import { createHash, type KeyObject, verify as nodeVerify } from 'node:crypto';
import { MmogitError } from '../errors.js';
import { type CanonicalValue, canonicalJson } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey } from '../identity/onion.js';
import { publicKeyObject, SIGNING_CONTEXTS, signedBytes } from '../identity/signing.js';
import type { VerifyItem } from './_verify-pool.js';
import { SEALED_KIND, SHARE_KIND, sealedBodyProblem, shareBodyProblem } from './sealed.js';

/**
 * The signed entry: one file per post, memory, message or other kind, content-addressed by the SHA-256 of its
 * bytes. Format `mmogit-entry` version 1 (docs/protocol.md §3 (Entries)):
 *
 * ```json
 * {"author":"<hex ed25519>","body":{…},"createdAt":"2025-01-01T00:00:00.000Z","format":"mmogit-entry",
 *  "kind":"memory","signature":"<hex>","version":1,"visibility":"public"}
 * ```
 * The file is the canonical JSON (identity/canonical.ts) of that object plus `\n`; the signature covers the
 * canonical JSON of the object without `signature`, under the `memory-entry/v1` signing context.
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

export const ENTRY_FORMAT = 'mmogit-entry';
export const ENTRY_VERSION = 1;
/** Largest entry file we write or accept. */
export const MAX_ENTRY_BYTES = 64 * 1024;
/** Limits on memory fields. */
export const MEMORY_LIMITS = { tags: 64, tagLength: 64, references: 256, referenceLength: 256 } as const;
/** Confidence when the caller gives none. */
export const DEFAULT_CONFIDENCE = 0.8;

export type Visibility = 'public' | 'private';

/** A signed entry as stored. */
export interface Entry {
  format: typeof ENTRY_FORMAT;
  version: typeof ENTRY_VERSION;
  /** `memory`, `post`, `message`, … (lower-case, `[a-z][a-z0-9-]{0,31}`). */
  kind: string;
  /** Author's Ed25519 public key, lower-case hex. */
  author: string;
  /** ISO 8601 UTC with milliseconds. */
  createdAt: string;
  visibility: Visibility;
  body: { [key: string]: CanonicalValue };
  /** Ed25519 signature, lower-case hex. */
  signature: string;
}

/** Body of a `memory` entry. */
export interface MemoryBody {
  type: MemoryType;
  content: string;
  tags: string[];
  confidence: number;
  references: string[];
  expiresAt?: string;
}

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

const KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const HEX128_RE = /^[0-9a-f]{128}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function invalid(message: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError('ERR_INVALID_MEMORY', message, details ? { details } : {});
}

function isoTime(value: string | Date, field: string): string {
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

/** Checks and normalises a memory; throws ERR_INVALID_MEMORY for an unknown type, a confidence outside 0..1, … */
export function memoryBody(input: MemoryInput): MemoryBody {
  if (typeof input !== 'object' || input === null) throw invalid('memory must be an object');
  if (!(MEMORY_TYPES as readonly string[]).includes(input.type as string)) {
    throw invalid(`unknown memory type ${JSON.stringify(input.type)} (one of ${MEMORY_TYPES.join(', ')})`, {
      field: 'type',
    });
  }
  if (typeof input.content !== 'string' || input.content.length === 0) {
    throw invalid('memory content must be a non-empty string', { field: 'content' });
  }
  const confidence = input.confidence ?? DEFAULT_CONFIDENCE;
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
    throw invalid(`confidence must be a number in 0..1, got ${String(input.confidence)}`, {
      field: 'confidence',
    });
  }
  const body: MemoryBody = {
    type: input.type,
    content: input.content,
    tags: stringList(input.tags, 'tags', MEMORY_LIMITS.tags, MEMORY_LIMITS.tagLength),
    confidence,
    references: stringList(
      input.references,
      'references',
      MEMORY_LIMITS.references,
      MEMORY_LIMITS.referenceLength,
    ),
  };
  if (input.expiresAt !== undefined) body.expiresAt = isoTime(input.expiresAt, 'expiresAt');
  return body;
}

/** Checks a visibility value. */
export function checkVisibility(v: unknown): Visibility {
  if (v === undefined) return 'public';
  if (v !== 'public' && v !== 'private') throw invalid(`visibility must be public or private`);
  return v;
}

/** Checks an entry kind. */
export function checkKind(kind: unknown): string {
  if (typeof kind !== 'string' || !KIND_RE.test(kind)) {
    throw invalid(`entry kind must match ${KIND_RE.source}`, { field: 'kind' });
  }
  return kind;
}

/** A signed entry with its file bytes and id. */
export interface EncodedEntry {
  id: string;
  entry: Entry;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();

/** The content address of an entry: SHA-256 of its file bytes, lower-case hex. */
export function entryId(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The entry's path in the tree: `entries/<h0>/<h1>/<h2>/<id>.json` (16-way fan-out, every tree ≤ 16 dirs). */
export function entryPath(id: string): string[] {
  return ['entries', id[0] as string, id[1] as string, id[2] as string, `${id}.json`];
}

/** Signs an entry of `kind` by `key`. `createdAt` defaults to now. */
export function signEntry(
  key: AgentKey,
  kind: string,
  body: { [key: string]: CanonicalValue },
  options: { visibility?: Visibility; createdAt?: string | Date } = {},
): EncodedEntry {
  const unsigned = {
    format: ENTRY_FORMAT,
    version: ENTRY_VERSION,
    kind: checkKind(kind),
    author: key.publicKeyHex,
    createdAt: isoTime(options.createdAt ?? new Date(), 'createdAt'),
    visibility: checkVisibility(options.visibility),
    body,
  } as const;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('entry body must be an object');
  }
  const unsignedJson = canonicalJson(unsigned);
  const signature = Buffer.from(
    key.sign(SIGNING_CONTEXTS.memoryEntry, encoder.encode(unsignedJson)),
  ).toString('hex');
  const entry: Entry = { ...unsigned, body, signature };
  // Canonical key order puts `signature` right before `version`, the last two fields have fixed shapes, so the
  // full encoding is the unsigned one with the signature spliced in (saves a second canonicalisation).
  const tail = unsignedJson.lastIndexOf(',"version":');
  const bytes = encoder.encode(
    `${unsignedJson.slice(0, tail)},"signature":"${signature}"${unsignedJson.slice(tail)}\n`,
  );
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new MmogitError('ERR_TOO_LARGE', `entry is ${bytes.length} bytes (limit ${MAX_ENTRY_BYTES})`, {
      details: { bytes: bytes.length, limit: MAX_ENTRY_BYTES },
    });
  }
  return { id: entryId(bytes), entry, bytes };
}

/** Result of reading an entry file: `verified` is true only if every check passed. */
export interface DecodedEntry {
  id: string;
  entry: Entry | null;
  verified: boolean;
  /** Why `verified` is false. */
  problem?: string;
}

const keyCache = new Map<string, KeyObject>();
function keyFor(hex: string): KeyObject {
  let k = keyCache.get(hex);
  if (!k) {
    k = publicKeyObject(Buffer.from(hex, 'hex'));
    if (keyCache.size > 4096) keyCache.clear();
    keyCache.set(hex, k);
  }
  return k;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `problem` of an entry decoded with `checkSignature: false` whose other checks all passed. */
export const UNCHECKED = 'signature not checked';

/**
 * Parses and verifies an entry file: size, canonical encoding, id (= SHA-256 of the bytes, when `expectedId` is
 * given), format and version, field shapes, the kind's body rules, and the author's signature. Never throws for
 * bad data: it reports it.
 */
export function decodeEntry(
  bytes: Uint8Array,
  expectedId?: string,
  options: { checkSignature?: boolean } = {},
): DecodedEntry {
  const id = entryId(bytes);
  const fail = (problem: string, entry: Entry | null = null): DecodedEntry => ({
    id,
    entry,
    verified: false,
    problem,
  });
  if (bytes.length > MAX_ENTRY_BYTES) return fail('entry too large');
  if (expectedId !== undefined && expectedId !== id) return fail('file name is not the SHA-256 of its bytes');
  let text: string;
  let parsed: unknown;
  try {
    text = decoder.decode(bytes);
    parsed = JSON.parse(text);
  } catch {
    return fail('not UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('not an object');
  const e = parsed as Partial<Entry> & Record<string, unknown>;
  const keys = Object.keys(e).sort().join(',');
  if (keys !== 'author,body,createdAt,format,kind,signature,version,visibility')
    return fail('unexpected fields');
  if (e.format !== ENTRY_FORMAT || e.version !== ENTRY_VERSION) return fail('unknown format or version');
  if (
    typeof e.kind !== 'string' ||
    !KIND_RE.test(e.kind) ||
    typeof e.author !== 'string' ||
    !HEX64_RE.test(e.author) ||
    typeof e.createdAt !== 'string' ||
    !ISO_RE.test(e.createdAt) ||
    (e.visibility !== 'public' && e.visibility !== 'private') ||
    typeof e.body !== 'object' ||
    e.body === null ||
    Array.isArray(e.body) ||
    typeof e.signature !== 'string' ||
    !HEX128_RE.test(e.signature)
  ) {
    return fail('malformed fields');
  }
  const entry = e as Entry;
  let canonical: string;
  try {
    canonical = canonicalJson(entry as unknown as CanonicalValue);
  } catch {
    return fail('not canonical JSON', entry);
  }
  if (`${canonical}\n` !== text) return fail('not canonical JSON', entry);
  if (entry.kind === 'memory') {
    try {
      const b = memoryBody(entry.body as unknown as MemoryInput);
      if (canonicalJson(b as unknown as CanonicalValue) !== canonicalJson(entry.body)) {
        return fail('memory body is not normalised', entry);
      }
    } catch (err) {
      return fail(`invalid memory body: ${(err as Error).message}`, entry);
    }
  } else if (entry.kind === SEALED_KIND || entry.kind === SHARE_KIND) {
    const problem = entry.kind === SEALED_KIND ? sealedBodyProblem(entry.body) : shareBodyProblem(entry.body);
    if (problem) return fail(problem, entry);
    // Envelopes are public by construction, share records private: anything else is not ours.
    if (entry.visibility !== (entry.kind === SEALED_KIND ? 'public' : 'private')) {
      return fail(`${entry.kind} entry with the wrong visibility`, entry);
    }
  }
  if (options.checkSignature === false) return fail(UNCHECKED, entry);
  return verifyEntrySignature(entry) ? { id, entry, verified: true } : fail('bad signature', entry);
}

/**
 * The signature check of a well-formed entry, for batch verification ({@link verifyMany}). With the entry's
 * file bytes (already checked canonical by {@link decodeEntry}) the signed message is cut out of them instead
 * of re-encoded: the top-level `signature` is the last one (it sorts after `body`).
 */
export function signatureItem(entry: Entry, fileBytes?: Uint8Array): VerifyItem {
  const { signature, ...unsigned } = entry;
  let message: Uint8Array | null = null;
  if (fileBytes) {
    const text = decoder.decode(fileBytes);
    const field = `,"signature":"${signature}"`;
    const at = text.lastIndexOf(field);
    if (at > 0) message = encoder.encode(text.slice(0, at) + text.slice(at + field.length, -1));
  }
  return {
    message: signedBytes(
      SIGNING_CONTEXTS.memoryEntry,
      message ?? encoder.encode(canonicalJson(unsigned as unknown as CanonicalValue)),
    ),
    signature: Buffer.from(signature, 'hex'),
    publicKey: Buffer.from(entry.author, 'hex'),
  };
}

/** Checks only the author's signature of a well-formed entry (see {@link decodeEntry} for the rest). */
export function verifyEntrySignature(entry: Entry): boolean {
  const { signature, ...unsigned } = entry;
  const message = encoder.encode(canonicalJson(unsigned as unknown as CanonicalValue));
  let ok = false;
  try {
    ok = nodeVerify(
      null,
      signedBytes(SIGNING_CONTEXTS.memoryEntry, message),
      keyFor(entry.author),
      Buffer.from(signature, 'hex'),
    );
  } catch {
    ok = false;
  }
  return ok;
}

/** The onion address of an entry's author. */
export function authorOnion(entry: Entry): string {
  return onionFromPublicKey(Buffer.from(entry.author, 'hex'));
}
