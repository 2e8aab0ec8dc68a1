/**
 * The messaging wire model: signed message envelopes, signed acknowledgements and the frames that carry them
 * inside a PQ session. Pure functions only (no I/O); the protocol is specified in docs/protocol.md §5.
 * @module
 */
import { type KeyObject, verify as nodeVerify, randomBytes } from 'node:crypto';
import { describeValue, MmogitError } from '../errors.js';
import { canonicalBytes } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import { publicKeyObject, SIGNING_CONTEXTS, type SigningContext, signedBytes } from '../identity/signing.js';
import { isCanonicalOnion, onionHostname } from './messaging-onion.js';

/** Envelope and ack format version (docs/protocol.md §5.2.1). */
export const MESSAGE_VERSION = 1;
/**
 * Default cap on a message's text, counted by {@link textBytes}. 48 KiB leaves room for the envelope, the
 * signatures and the ack inside the memory store's 64 KiB entry limit (src/memory/entry.ts MAX_ENTRY_BYTES).
 */
export const DEFAULT_MAX_TEXT_BYTES = 48 * 1024;

/** The signed body of a message. `from`/`to` are lower-case `<56>.onion` addresses; `timestamp` is ms. */
export interface MessageEnvelope {
  v: 1;
  /** 128 random bits, 32 lower-case hex characters. */
  id: string;
  from: string;
  to: string;
  text: string;
  timestamp: number;
}

/** The signed body of an acknowledgement: `by` (the recipient) confirms it has stored message `id`. */
export interface MessageAck {
  v: 1;
  id: string;
  status: 'delivered';
  by: string;
  timestamp: number;
}

/** A message with its Ed25519 signature (base64) under {@link SIGNING_CONTEXTS}.message. */
export interface SignedMessage {
  message: MessageEnvelope;
  sig: string;
}

/** An ack with its Ed25519 signature (base64) under {@link SIGNING_CONTEXTS}.messageAck. */
export interface SignedAck {
  ack: MessageAck;
  sig: string;
}

/**
 * Every frame of `/mmogit/msg/1.0.0` (and `/2.0.0`, whose `msg` frames may carry a version 2 envelope: `M`),
 * sent as one PQ-session record of UTF-8 JSON.
 */
export type MessagingFrame<M = MessageEnvelope> =
  | { t: 'msg'; m: M; sig: string }
  | { t: 'ack'; a: MessageAck; sig: string }
  | { t: 'err'; id?: string; code: string; message: string }
  | { t: 'ping'; n: string }
  | { t: 'pong'; n: string };

/** A message id (also a thread or reply-to id, an ack's id, a file offer's id): 32 lower-case hex characters. */
export const MESSAGE_ID_RE = /^[0-9a-f]{32}$/;
const SIG_RE = /^[A-Za-z0-9+/]{86}==$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function badFrame(why: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError('ERR_BAD_FRAME', `bad messaging frame: ${why}`, details ? { details } : {});
}

/** A fresh message id: 128 random bits as hex. */
export function newMessageId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The size of `text` as it travels and is stored: the UTF-8 length of its JSON string encoding, without the
 * quotes. Equal to the UTF-8 length for ordinary text; control characters, `"` and `\\` count as escaped.
 * Counting this way makes the frame and store sizes a fixed overhead above the cap, whatever the text holds.
 */
export function textBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), 'utf8') - 2;
}

/**
 * Builds and signs a message from `key` to `to`. Throws `ERR_TOO_LARGE` above `maxTextBytes` and
 * `ERR_INVALID_ONION` for a bad recipient.
 *
 * @example
 * const signed = signMessage(key, peerOnion, 'hello');
 * verifyMessage(signed) // true
 */
export function signMessage(
  key: AgentKey,
  to: string,
  text: string,
  options: { id?: string; timestamp?: number; maxTextBytes?: number } = {},
): SignedMessage {
  if (typeof text !== 'string')
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'message text must be a string');
  const max = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
  const size = textBytes(text);
  if (size > max) {
    throw new MmogitError('ERR_TOO_LARGE', `message text is ${size} bytes, the limit is ${max}`, {
      details: { bytes: size, limit: max },
    });
  }
  const message: MessageEnvelope = {
    v: MESSAGE_VERSION,
    id: options.id ?? newMessageId(),
    from: key.onion,
    to: onionHostname(to),
    text,
    timestamp: options.timestamp ?? Date.now(),
  };
  const sig = key.sign(SIGNING_CONTEXTS.message, canonicalBytes({ ...message }));
  return { message, sig: Buffer.from(sig).toString('base64') };
}

/** Signs the ack for message `id` as `key` (the recipient). */
export function signAck(key: AgentKey, id: string, timestamp = Date.now()): SignedAck {
  const ack: MessageAck = { v: MESSAGE_VERSION, id, status: 'delivered', by: key.onion, timestamp };
  const sig = key.sign(SIGNING_CONTEXTS.messageAck, canonicalBytes({ ...ack }));
  return { ack, sig: Buffer.from(sig).toString('base64') };
}

function sigBytes(sig: string): Uint8Array {
  return SIG_RE.test(sig) ? new Uint8Array(Buffer.from(sig, 'base64')) : new Uint8Array(0);
}

/** Peers' public keys as Node KeyObjects, by onion: parsing the onion and importing the key cost ~15 µs each. */
const peerKeys = new Map<string, KeyObject | null>();
const PEER_KEY_CACHE_MAX = 1024;

/** The KeyObject of the Ed25519 key `onion` encodes (rend-spec-v3 §6), or null when it is not a valid key. */
function peerKey(onion: string): KeyObject | null {
  let key = peerKeys.get(onion);
  if (key !== undefined) return key;
  try {
    key = publicKeyObject(parseOnionAddress(onion).publicKey);
  } catch {
    key = null;
  }
  // The mapping never changes, so any entry may go: drop the oldest when full.
  if (peerKeys.size >= PEER_KEY_CACHE_MAX) peerKeys.delete(peerKeys.keys().next().value as string);
  peerKeys.set(onion, key);
  return key;
}

/**
 * Same result as identity/signing.ts `verifySignature`, with the signer's key (the one `onion` encodes) taken
 * from a cache: true when `sig` (base64) is `onion`'s signature of `body` under `context`.
 */
export function verifyBy(context: SigningContext, body: Uint8Array, sig: string, onion: string): boolean {
  const signature = sigBytes(sig);
  if (signature.length !== 64) return false;
  const key = peerKey(onion);
  if (!key) return false;
  try {
    return nodeVerify(null, signedBytes(context, body), key, signature);
  } catch {
    return false;
  }
}

/** True when `signed.sig` is `signed.message.from`'s signature of the envelope (the key is the onion's). */
export function verifyMessage(signed: SignedMessage): boolean {
  return verifyBy(
    SIGNING_CONTEXTS.message,
    canonicalBytes({ ...signed.message }),
    signed.sig,
    signed.message.from,
  );
}

/** True when `signed.sig` is `signed.ack.by`'s signature of the ack. */
export function verifyAck(signed: SignedAck): boolean {
  return verifyBy(SIGNING_CONTEXTS.messageAck, canonicalBytes({ ...signed.ack }), signed.sig, signed.ack.by);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], what: string): void {
  const got = Object.keys(obj);
  // Unknown members are refused: the signature covers the canonical form of exactly these fields.
  if (got.length !== keys.length || !keys.every((k) => Object.hasOwn(obj, k))) {
    throw badFrame(`${what} must have exactly the members ${keys.join(', ')}`);
  }
}

function isTimestamp(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Checks the shape of an envelope (not its signature). Throws `ERR_BAD_FRAME`. */
export function parseEnvelope(x: unknown): MessageEnvelope {
  if (!isRecord(x)) throw badFrame('message is not an object');
  exactKeys(x, ['v', 'id', 'from', 'to', 'text', 'timestamp'], 'message');
  const { v, id, from, to, text, timestamp } = x;
  if (v !== MESSAGE_VERSION) throw badFrame(`unsupported message version ${describeValue(v)}`);
  if (typeof id !== 'string' || !MESSAGE_ID_RE.test(id))
    throw badFrame('message id must be 32 hex characters');
  if (!isCanonicalOnion(from)) throw badFrame('message "from" is not an onion address');
  if (!isCanonicalOnion(to)) throw badFrame('message "to" is not an onion address');
  if (typeof text !== 'string') throw badFrame('message text must be a string');
  if (!isTimestamp(timestamp)) throw badFrame('message timestamp must be a non-negative integer');
  return { v, id, from, to, text, timestamp };
}

/** Checks the shape of an ack (not its signature). Throws `ERR_BAD_FRAME`. */
export function parseAck(x: unknown): MessageAck {
  if (!isRecord(x)) throw badFrame('ack is not an object');
  exactKeys(x, ['v', 'id', 'status', 'by', 'timestamp'], 'ack');
  const { v, id, status, by, timestamp } = x;
  if (v !== MESSAGE_VERSION) throw badFrame(`unsupported ack version ${describeValue(v)}`);
  if (typeof id !== 'string' || !MESSAGE_ID_RE.test(id)) throw badFrame('ack id must be 32 hex characters');
  if (status !== 'delivered') throw badFrame('ack status must be "delivered"');
  if (!isCanonicalOnion(by)) throw badFrame('ack "by" is not an onion address');
  if (!isTimestamp(timestamp)) throw badFrame('ack timestamp must be a non-negative integer');
  return { v, id, status, by, timestamp };
}

/** Serialises a frame as UTF-8 JSON. */
export function encodeFrame<M>(frame: MessagingFrame<M>): Uint8Array {
  return encoder.encode(JSON.stringify(frame));
}

/**
 * Parses one frame. Refuses (`ERR_TOO_LARGE`) a payload over `maxFrameBytes` before parsing it, and anything
 * that is not valid UTF-8 JSON of a known frame type with well-formed members (`ERR_BAD_FRAME`). A `msg`
 * frame's envelope is checked by `parseMessage` (default: version 1 only, {@link parseEnvelope}).
 */
export function decodeFrame(payload: Uint8Array, maxFrameBytes: number): MessagingFrame;
export function decodeFrame<M>(
  payload: Uint8Array,
  maxFrameBytes: number,
  parseMessage: (x: unknown) => M,
): MessagingFrame<M | MessageEnvelope>;
export function decodeFrame<M>(
  payload: Uint8Array,
  maxFrameBytes: number,
  parseMessage: (x: unknown) => M | MessageEnvelope = parseEnvelope,
): MessagingFrame<M | MessageEnvelope> {
  if (payload.length > maxFrameBytes) {
    throw new MmogitError('ERR_TOO_LARGE', `frame of ${payload.length} bytes exceeds ${maxFrameBytes}`, {
      details: { bytes: payload.length, limit: maxFrameBytes },
    });
  }
  let x: unknown;
  try {
    x = JSON.parse(decoder.decode(payload));
  } catch {
    throw badFrame('not UTF-8 JSON');
  }
  if (!isRecord(x) || typeof x.t !== 'string') throw badFrame('no frame type');
  switch (x.t) {
    case 'msg':
      exactKeys(x, ['t', 'm', 'sig'], 'msg frame');
      if (typeof x.sig !== 'string' || !SIG_RE.test(x.sig)) throw badFrame('malformed signature');
      return { t: 'msg', m: parseMessage(x.m), sig: x.sig };
    case 'ack':
      exactKeys(x, ['t', 'a', 'sig'], 'ack frame');
      if (typeof x.sig !== 'string' || !SIG_RE.test(x.sig)) throw badFrame('malformed signature');
      return { t: 'ack', a: parseAck(x.a), sig: x.sig };
    case 'err': {
      if (typeof x.code !== 'string' || typeof x.message !== 'string') throw badFrame('malformed err frame');
      const id = typeof x.id === 'string' && MESSAGE_ID_RE.test(x.id) ? x.id : undefined;
      return { t: 'err', ...(id ? { id } : {}), code: x.code.slice(0, 64), message: x.message.slice(0, 500) };
    }
    case 'ping':
    case 'pong':
      if (typeof x.n !== 'string' || !/^[0-9a-f]{16,64}$/.test(x.n)) throw badFrame(`malformed ${x.t}`);
      return { t: x.t, n: x.n };
    default:
      throw badFrame(`unknown frame type ${describeValue(x.t, 20)}`);
  }
}

/** The largest frame a message with `maxTextBytes` of text ({@link textBytes}) can produce, plus slack. */
export function maxFrameBytesFor(maxTextBytes: number): number {
  return maxTextBytes + 4096;
}
