/**
 * Message format version 2 (docs/protocol.md §5.10): a typed message with a JSON body, a thread, an optional
 * reply-to and string metadata, every field signed. Version 1 envelopes (messaging-envelope.ts) stay valid;
 * this module also holds what works on either version (parse, verify, size, the application's view) and the
 * downgrade of a v2 message that a v1 peer can represent. Pure functions only.
 * @module
 */
import { describeValue, MmogitError } from '../errors.js';
import { type CanonicalValue, canonicalBytes, canonicalJson } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { SIGNING_CONTEXTS } from '../identity/signing.js';
import {
  DEFAULT_MAX_TEXT_BYTES,
  MESSAGE_ID_RE,
  type MessageEnvelope,
  newMessageId,
  parseEnvelope,
  type SignedMessage,
  signMessage,
  textBytes,
  verifyBy,
  verifyMessage,
} from './messaging-envelope.js';
import { isCanonicalOnion, onionHostname } from './messaging-onion.js';

/** Defined beside version 1's envelope (which this module builds on), the one rule for every message id. */
export { MESSAGE_ID_RE } from './messaging-envelope.js';

/** The envelope version this module adds. */
export const MESSAGE_VERSION_2 = 2;
/** The well-known message types; any other string matching {@link MESSAGE_TYPE_RE} is a custom type. */
export const MESSAGE_TYPES = [
  'message',
  'task-proposal',
  'task-result',
  'capability-query',
  'status-update',
] as const;
/** A type: 1–64 characters, letters, digits and `. _ : / -`, starting with a letter or digit. */
export const MESSAGE_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
/** A metadata key: 1–64 characters, letters, digits and `. _ -`, starting with a letter or digit. */
export const META_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** At most this many metadata entries. */
export const MAX_META_ENTRIES = 32;
/** Arrays and objects in a body nest at most this deep (the signature is computed recursively). */
export const MAX_BODY_DEPTH = 32;

/** Any JSON value with one canonical encoding (no `undefined`, finite numbers). */
export type JsonValue = CanonicalValue;

/** The signed body of a version 2 message. `thread` is the id of the thread's first message. */
export interface MessageEnvelopeV2 {
  v: 2;
  id: string;
  from: string;
  to: string;
  timestamp: number;
  type: string;
  body: JsonValue;
  thread: string;
  replyTo?: string;
  meta?: Record<string, string>;
}

/** What to send: a text, or a typed, threaded message with a JSON body. */
export interface MessageInput {
  /** Default `message`. */
  type?: string;
  /** A string body (exclusive with `body`). */
  text?: string;
  /** Any JSON value (exclusive with `text`). */
  body?: JsonValue;
  /** The thread's id; default: the thread of `replyTo` when known, else `replyTo`, else the new message's id. */
  thread?: string;
  /** The id of the message this answers. */
  replyTo?: string;
  /** String metadata (at most 32 entries). */
  meta?: Record<string, string>;
}

/** An envelope of either version. */
export type AnyEnvelope = MessageEnvelope | MessageEnvelopeV2;

/** A message of either version with its Ed25519 signature (base64) under the `message/v1` context. */
export interface AnySignedMessage {
  message: AnyEnvelope;
  sig: string;
}

const REQUIRED = ['v', 'id', 'from', 'to', 'timestamp', 'type', 'body', 'thread'] as const;
const OPTIONAL = ['replyTo', 'meta'] as const;

function badFrame(why: string): MmogitError {
  return new MmogitError('ERR_BAD_FRAME', `bad messaging frame: ${why}`);
}

function badInput(why: string, field: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', why, { details: { field } });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * True when `x` is a JSON value with one canonical encoding, nested at most {@link MAX_BODY_DEPTH} deep: the
 * check is iterative, so a hostile body cannot exhaust the stack before it is refused.
 */
export function isJsonValue(x: unknown): x is JsonValue {
  const stack: [unknown, number][] = [[x, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false;
      continue;
    }
    if (typeof v !== 'object' || depth >= MAX_BODY_DEPTH) return false;
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const item of Object.values(v)) stack.push([item, depth + 1]);
  }
  return true;
}

function isMeta(x: unknown): x is Record<string, string> {
  if (!isRecord(x)) return false;
  const entries = Object.entries(x);
  return (
    entries.length >= 1 &&
    entries.length <= MAX_META_ENTRIES &&
    entries.every(([k, v]) => META_KEY_RE.test(k) && typeof v === 'string')
  );
}

/**
 * The size the message cap counts: for version 1 the text ({@link textBytes}); for version 2 the body (a string
 * as {@link textBytes} counts it, anything else as the UTF-8 length of its canonical JSON) plus the UTF-8
 * length of the metadata's canonical JSON. The rest of an envelope is bounded (ids, onions, a
 * type of at most 64 characters), so frames and stored records stay a fixed overhead above the cap.
 */
export function payloadBytes(m: AnyEnvelope): number {
  if (m.v === 1) return textBytes(m.text);
  // A string body counts as a version 1 text does (no quotes), so the same text fits either version.
  const body =
    typeof m.body === 'string' ? textBytes(m.body) : Buffer.byteLength(canonicalJson(m.body), 'utf8');
  return body + (m.meta ? Buffer.byteLength(canonicalJson(m.meta), 'utf8') : 0);
}

/** The canonical object a version 2 signature covers: exactly the envelope's members. */
function signedBody(m: MessageEnvelopeV2): CanonicalValue {
  return { ...m };
}

/**
 * Builds and signs a version 2 message from `key` to `to`. `input.body` (any JSON value) or `input.text` (a
 * string body) is the content; `type` defaults to `message`, `thread` to the message's own id (it starts a
 * thread).
 *
 * @throws `ERR_INVALID_ARGUMENT` (a bad type, thread, reply-to, metadata or body, or both `text` and `body`),
 *   `ERR_TOO_LARGE` (over `maxBytes`, {@link payloadBytes}), `ERR_INVALID_ONION`.
 * @example
 * const s = signMessageV2(key, peer, { type: 'task-proposal', body: { task: 'index the repo' } });
 * verifyAnyMessage(s) // true
 */
export function signMessageV2(
  key: AgentKey,
  to: string,
  input: MessageInput,
  options: { id?: string; timestamp?: number; maxBytes?: number } = {},
): { message: MessageEnvelopeV2; sig: string } {
  if (input.text !== undefined && input.body !== undefined) {
    throw badInput('give a message text or a body, not both', 'body');
  }
  const body: unknown = input.body ?? input.text ?? '';
  if (!isJsonValue(body)) {
    throw badInput(
      `message body must be JSON (finite numbers, nested at most ${MAX_BODY_DEPTH} deep)`,
      'body',
    );
  }
  const type = input.type ?? 'message';
  if (typeof type !== 'string' || !MESSAGE_TYPE_RE.test(type)) {
    throw badInput(
      `message type ${describeValue(type, 64)} is not 1–64 letters, digits or . _ : / -`,
      'type',
    );
  }
  const id = options.id ?? newMessageId();
  for (const [field, value] of [
    ['thread', input.thread],
    ['replyTo', input.replyTo],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || !MESSAGE_ID_RE.test(value))) {
      throw badInput(`${field} must be a message id (32 hex characters)`, field);
    }
  }
  if (input.meta !== undefined && Object.keys(input.meta).length > 0 && !isMeta(input.meta)) {
    throw badInput(
      `metadata must be at most ${MAX_META_ENTRIES} string values under keys of letters, digits and . _ -`,
      'meta',
    );
  }
  const meta = input.meta !== undefined && Object.keys(input.meta).length > 0 ? { ...input.meta } : undefined;
  const message: MessageEnvelopeV2 = {
    v: MESSAGE_VERSION_2,
    id,
    from: key.onion,
    to: onionHostname(to),
    timestamp: options.timestamp ?? Date.now(),
    type,
    body,
    thread: input.thread ?? id,
    ...(input.replyTo !== undefined ? { replyTo: input.replyTo } : {}),
    ...(meta ? { meta } : {}),
  };
  const max = options.maxBytes ?? DEFAULT_MAX_TEXT_BYTES;
  const size = payloadBytes(message);
  if (size > max) {
    throw new MmogitError('ERR_TOO_LARGE', `message body is ${size} bytes, the limit is ${max}`, {
      details: { bytes: size, limit: max },
    });
  }
  const sig = key.sign(SIGNING_CONTEXTS.message, canonicalBytes(signedBody(message)));
  return { message, sig: Buffer.from(sig).toString('base64') };
}

/** Checks the shape of a version 2 envelope (not its signature). Throws `ERR_BAD_FRAME`. */
export function parseEnvelopeV2(x: unknown): MessageEnvelopeV2 {
  if (!isRecord(x)) throw badFrame('message is not an object');
  const keys = Object.keys(x);
  // Unknown members are refused: the signature covers the canonical form of exactly these fields.
  const allowed: readonly string[] = [...REQUIRED, ...OPTIONAL];
  if (!REQUIRED.every((k) => Object.hasOwn(x, k)) || !keys.every((k) => allowed.includes(k))) {
    throw badFrame(
      `a version 2 message has the members ${REQUIRED.join(', ')} and optionally ${OPTIONAL.join(', ')}`,
    );
  }
  const { v, id, from, to, timestamp, type, body, thread, replyTo, meta } = x;
  if (v !== MESSAGE_VERSION_2) throw badFrame(`unsupported message version ${describeValue(v)}`);
  if (typeof id !== 'string' || !MESSAGE_ID_RE.test(id))
    throw badFrame('message id must be 32 hex characters');
  if (!isCanonicalOnion(from)) throw badFrame('message "from" is not an onion address');
  if (!isCanonicalOnion(to)) throw badFrame('message "to" is not an onion address');
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw badFrame('message timestamp must be a non-negative integer');
  }
  if (typeof type !== 'string' || !MESSAGE_TYPE_RE.test(type)) throw badFrame('malformed message type');
  if (!isJsonValue(body)) throw badFrame(`message body is not JSON nested at most ${MAX_BODY_DEPTH} deep`);
  if (typeof thread !== 'string' || !MESSAGE_ID_RE.test(thread))
    throw badFrame('thread must be 32 hex characters');
  if (replyTo !== undefined && (typeof replyTo !== 'string' || !MESSAGE_ID_RE.test(replyTo))) {
    throw badFrame('replyTo must be 32 hex characters');
  }
  if (meta !== undefined && !isMeta(meta)) throw badFrame('malformed metadata');
  return {
    v,
    id,
    from,
    to,
    timestamp,
    type,
    body,
    thread,
    ...(replyTo !== undefined ? { replyTo } : {}),
    ...(meta !== undefined ? { meta } : {}),
  };
}

/** Checks the shape of an envelope of either version. Throws `ERR_BAD_FRAME`. */
export function parseAnyEnvelope(x: unknown): AnyEnvelope {
  return isRecord(x) && x.v === MESSAGE_VERSION_2 ? parseEnvelopeV2(x) : parseEnvelope(x);
}

/** True when `signed.sig` is `signed.message.from`'s signature of the envelope, whatever its version. */
export function verifyAnyMessage(signed: AnySignedMessage): boolean {
  const m = signed.message;
  if (m.v === 1) return verifyMessage({ message: m, sig: signed.sig });
  return verifyBy(SIGNING_CONTEXTS.message, canonicalBytes(signedBody(m)), signed.sig, m.from);
}

/** True when a version 1 peer can carry `m` without losing anything: a plain text message starting a thread. */
export function representableInV1(m: MessageEnvelopeV2): boolean {
  return (
    m.type === 'message' &&
    typeof m.body === 'string' &&
    m.thread === m.id &&
    m.replyTo === undefined &&
    m.meta === undefined
  );
}

/**
 * The version 1 form of `m` (same id, timestamp and text), signed anew by `key` (its sender), for a peer that
 * speaks only version 1. Throws `ERR_PEER_UNSUPPORTED` when `m` needs version 2 (see {@link representableInV1}).
 */
export function downgradeToV1(key: AgentKey, m: MessageEnvelopeV2): SignedMessage {
  if (!representableInV1(m) || typeof m.body !== 'string') {
    throw new MmogitError(
      'ERR_PEER_UNSUPPORTED',
      `${m.to} speaks message format version 1 only; message ${m.id} needs version 2 (type, JSON body, thread, reply-to or metadata)`,
      { details: { id: m.id, peer: m.to, needs: 2 } },
    );
  }
  return signMessage(key, m.to, m.body, {
    id: m.id,
    timestamp: m.timestamp,
    maxTextBytes: Number.MAX_SAFE_INTEGER,
  });
}
