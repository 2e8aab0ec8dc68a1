/**
 * The file-transfer wire model (docs/protocol.md §9): the signed offer (a message format version 2 envelope of
 * type `file` whose body names the file), the control frames and the data frames of `/mmogit/file/1.0.0`,
 * and the receiver's rule for a stored file's name. Pure functions only (no I/O).
 * @module
 */
import { describeValue, MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseAck, type SignedAck } from './messaging-envelope.js';
import {
  type MessageEnvelopeV2,
  parseEnvelopeV2,
  signMessageV2,
  verifyAnyMessage,
} from './messaging-envelope-v2.js';

/** The libp2p protocol id of file transfer, version 1. */
export const FILE_PROTOCOL = '/mmogit/file/1.0.0';
/** The message type of a file's offer, and of its entry in the inbox. Reserved: plain messages may not use it. */
export const FILE_MESSAGE_TYPE = 'file';
/** Default cap on a file's size, either way (1 GiB); `maxFileBytes` / `--max-file-bytes` change it. */
export const DEFAULT_MAX_FILE_BYTES = 1024 ** 3;
/**
 * Data bytes per data frame: with the 1-byte frame tag this is exactly one PQ traffic frame (src/pqc/frames.ts
 * MAX_FRAME_DATA = 65,535), so a chunk costs one AEAD seal and no reassembly.
 */
export const FILE_CHUNK_BYTES = 65_534;
/** The receiver makes what it has durable and acknowledges it after every this many bytes. */
export const FILE_ACK_EVERY_BYTES = 1024 * 1024;
/** The sender keeps at most this many bytes unacknowledged in flight (flow control; memory stays bounded). */
export const FILE_WINDOW_BYTES = 4 * 1024 * 1024;
/** Longest file name carried (UTF-8 bytes), as most file systems allow (NAME_MAX). */
export const MAX_FILE_NAME_BYTES = 255;
/** Largest control frame (JSON): an offer with a 255-byte name is far below it. */
export const MAX_FILE_CONTROL_BYTES = 8 * 1024;
/** Largest record the file protocol accepts: a data frame (tag + chunk). */
export const MAX_FILE_RECORD_BYTES = 1 + FILE_CHUNK_BYTES;

/** First byte of a data frame; a control frame is UTF-8 JSON and so starts with `{` (0x7b). */
export const FILE_DATA_TAG = 0x00;

/** What an offer's body says about the file. */
export interface FileInfo {
  /** The sender's name for it: metadata only (the receiver picks the stored name, {@link storedFileName}). */
  name: string;
  size: number;
  /** Lower-case hex SHA-256 of the whole content. */
  sha256: string;
}

/** A signed offer: a version 2 message of type `file` whose body is a {@link FileInfo}. */
export interface SignedFileOffer {
  message: MessageEnvelopeV2 & { body: { name: string; size: number; sha256: string } };
  sig: string;
}

/** The control frames of `/mmogit/file/1.0.0`, each one PQ-session record of UTF-8 JSON. */
export type FileControlFrame =
  /** sender → receiver, first: the signed offer (the same one, same id, on every resumption). */
  | { t: 'offer'; m: MessageEnvelopeV2; sig: string }
  /** receiver → sender: send from `offset` (what it holds durably; 0 for a new transfer). */
  | { t: 'accept'; offset: number }
  /** receiver → sender: everything before `offset` is durable. */
  | { t: 'ack'; offset: number }
  /** sender → receiver: no more data (the receiver then checks size and hash). */
  | { t: 'end' }
  /** receiver → sender: the file is complete, verified and listed; the signed ack of the offer's id. */
  | { t: 'stored'; a: SignedAck['ack']; sig: string }
  /** either way: the transfer is refused or failed. */
  | { t: 'err'; code: string; message: string };

const SHA256_RE = /^[0-9a-f]{64}$/;
const SIG_RE = /^[A-Za-z0-9+/]{86}==$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function badFrame(why: string): MmogitError {
  return new MmogitError('ERR_BAD_FRAME', `bad file-transfer frame: ${why}`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isOffset(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Checks an offer body's shape; `ERR_BAD_FRAME` when it is not `{name, size, sha256}`. */
export function parseFileInfo(body: unknown): FileInfo {
  if (!isRecord(body)) throw badFrame('file offer body is not an object');
  const keys = Object.keys(body);
  if (keys.length !== 3 || !['name', 'size', 'sha256'].every((k) => Object.hasOwn(body, k))) {
    throw badFrame('file offer body must have exactly name, size, sha256');
  }
  const { name, size, sha256 } = body;
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) {
    throw badFrame(`file name must be 1–${MAX_FILE_NAME_BYTES} UTF-8 bytes`);
  }
  if (!isOffset(size)) throw badFrame('file size must be a non-negative integer');
  if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256))
    throw badFrame('sha256 must be 64 hex characters');
  return { name, size, sha256 };
}

/**
 * Signs the offer of `info` to `to`: a version 2 message of type {@link FILE_MESSAGE_TYPE} (the inbox lists it
 * once the file is stored). `id` and `timestamp` are fixed by the caller so a resumed transfer offers the very
 * same message.
 */
export function signFileOffer(
  key: AgentKey,
  to: string,
  info: FileInfo,
  options: { id?: string; timestamp?: number } = {},
): SignedFileOffer {
  const body = parseFileInfo(info);
  const signed = signMessageV2(
    key,
    to,
    { type: FILE_MESSAGE_TYPE, body: { name: body.name, size: body.size, sha256: body.sha256 } },
    options,
  );
  return signed as SignedFileOffer;
}

/** An offer's envelope checked as a file offer (type, body); the signature is checked by {@link verifyFileOffer}. */
export function parseFileOffer(m: MessageEnvelopeV2, sig: string): SignedFileOffer {
  if (m.type !== FILE_MESSAGE_TYPE) throw badFrame(`offer has type ${JSON.stringify(m.type)}, not "file"`);
  const info = parseFileInfo(m.body);
  if (m.meta !== undefined) throw badFrame('file offers carry no metadata');
  return { message: { ...m, body: { ...info } }, sig };
}

/** True when the offer's signature is its sender's (the `message/v1` context, as every message). */
export function verifyFileOffer(offer: SignedFileOffer): boolean {
  return verifyAnyMessage(offer);
}

/** Serialises a control frame as UTF-8 JSON. */
export function encodeFileControl(frame: FileControlFrame): Uint8Array {
  return encoder.encode(JSON.stringify(frame));
}

/** A data frame: {@link FILE_DATA_TAG} ‖ the chunk (copied once into the record). */
export function encodeFileData(chunk: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + chunk.length);
  out[0] = FILE_DATA_TAG;
  out.set(chunk, 1);
  return out;
}

/**
 * Parses one record: a data frame (its chunk, a view) or a control frame. Refuses an oversized record before
 * parsing it (`ERR_TOO_LARGE`), anything else malformed with `ERR_BAD_FRAME`.
 */
export function decodeFileRecord(
  record: Uint8Array,
): { kind: 'data'; chunk: Uint8Array } | { kind: 'control'; frame: FileControlFrame } {
  if (record.length === 0) throw badFrame('empty record');
  if (record[0] === FILE_DATA_TAG) {
    if (record.length > MAX_FILE_RECORD_BYTES) {
      throw new MmogitError('ERR_TOO_LARGE', `data frame of ${record.length} bytes`, {
        details: { bytes: record.length, limit: MAX_FILE_RECORD_BYTES },
      });
    }
    return { kind: 'data', chunk: record.subarray(1) };
  }
  if (record.length > MAX_FILE_CONTROL_BYTES) {
    throw new MmogitError('ERR_TOO_LARGE', `control frame of ${record.length} bytes`, {
      details: { bytes: record.length, limit: MAX_FILE_CONTROL_BYTES },
    });
  }
  let x: unknown;
  try {
    x = JSON.parse(decoder.decode(record));
  } catch {
    throw badFrame('control frame is not UTF-8 JSON');
  }
  if (!isRecord(x) || typeof x.t !== 'string') throw badFrame('no frame type');
  switch (x.t) {
    case 'offer':
      if (typeof x.sig !== 'string' || !SIG_RE.test(x.sig)) throw badFrame('malformed signature');
      return { kind: 'control', frame: { t: 'offer', m: parseEnvelopeV2(x.m), sig: x.sig } };
    case 'accept':
    case 'ack':
      if (!isOffset(x.offset)) throw badFrame(`${x.t} needs a non-negative integer offset`);
      return { kind: 'control', frame: { t: x.t, offset: x.offset } };
    case 'end':
      return { kind: 'control', frame: { t: 'end' } };
    case 'stored':
      if (typeof x.sig !== 'string' || !SIG_RE.test(x.sig)) throw badFrame('malformed signature');
      return { kind: 'control', frame: { t: 'stored', a: parseAck(x.a), sig: x.sig } };
    case 'err':
      if (typeof x.code !== 'string' || typeof x.message !== 'string') throw badFrame('malformed err frame');
      return {
        kind: 'control',
        frame: { t: 'err', code: x.code.slice(0, 64), message: x.message.slice(0, 500) },
      };
    default:
      throw badFrame(`unknown frame type ${describeValue(x.t, 20)}`);
  }
}

/**
 * The sender's name made safe as the tail of a stored name: path separators, `..`, control and other
 * characters outside `[A-Za-z0-9._-]` become `_`, leading dots are dropped (no hidden files, no `..`), and the
 * result is at most 100 characters (`file` when nothing is left). It never names a directory.
 *
 * @example
 * sanitiseFileName('../../.ssh/authorized_keys') // '_._.ssh_authorized_keys'
 */
export function sanitiseFileName(name: string): string {
  const safe = name
    .normalize('NFC')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[.]+/, '')
    .replace(/\.{2,}/g, '.')
    .slice(0, 100);
  return safe === '' ? 'file' : safe;
}

/**
 * The name the receiver stores a complete file under, inside `files/<sender onion>/`: the offer's id (unique
 * per sender), a dash and the sanitised name. Derived from the signed offer only, so it is the same on every
 * resumption and can be found again from the inbox entry.
 */
export function storedFileName(offer: { id: string; body: { name: string } }): string {
  return `${offer.id}-${sanitiseFileName(offer.body.name)}`;
}
