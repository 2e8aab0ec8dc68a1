/**
 * Link cells and relay messages (docs/protocol.md §8.2, §8.5): pure encoders and parsers. A parser that meets a
 * malformed input throws a {@link MeshError} with reason `protocol` (the caller closes the link or circuit).
 * @module
 */
import {
  BODY_LEN,
  CELL_HEADER_LEN,
  FILLER_LEN,
  MAX_MSG,
  MSG_HEADER_LEN,
  messageCapacity,
  RECOGNIZED_LEN,
  RELAY_CLASSES,
  TAG_LEN,
} from './_wire.js';
import { MeshError } from './errors.js';

/** One link cell. `body` is a view into the payload it was parsed from. */
export interface Cell {
  circId: number;
  cmd: number;
  body: Uint8Array;
}

/** Encodes a link cell; `body` must have the command's fixed length. */
export function encodeCell(circId: number, cmd: number, body: Uint8Array): Buffer {
  const len = BODY_LEN[cmd];
  if (len === undefined || body.length !== len) {
    throw new RangeError(`cell command ${cmd} needs a ${len}-byte body, got ${body.length}`);
  }
  const out = Buffer.allocUnsafe(CELL_HEADER_LEN + len);
  out.writeUInt32BE(circId >>> 0, 0);
  out[4] = cmd;
  out.set(body, CELL_HEADER_LEN);
  return out;
}

/** Splits a link payload into whole cells; anything else (unknown command, a cut cell) is `protocol`. */
export function parseCells(payload: Uint8Array): Cell[] {
  const cells: Cell[] = [];
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  let at = 0;
  while (at < view.length) {
    if (view.length - at < CELL_HEADER_LEN)
      throw new MeshError('protocol', 'link payload ends inside a cell');
    const circId = view.readUInt32BE(at);
    const cmd = view[at + 4] as number;
    const len = BODY_LEN[cmd];
    if (len === undefined) throw new MeshError('protocol', `unknown cell command ${cmd}`);
    const start = at + CELL_HEADER_LEN;
    if (view.length - start < len) throw new MeshError('protocol', 'link payload ends inside a cell body');
    cells.push({ circId, cmd, body: view.subarray(start, start + len) });
    at = start + len;
  }
  return cells;
}

/** A relay message as the addressed hop reads it. */
export interface RelayMessage {
  cmd: number;
  stream: number;
  data: Buffer;
}

/** A relay message's data: one buffer, or parts in order (never joined by the caller). */
export type MessageData = Uint8Array | readonly Uint8Array[];

/** Bytes of a {@link MessageData}. */
export function dataLength(data: MessageData): number {
  if (!Array.isArray(data)) return (data as Uint8Array).length;
  let n = 0;
  for (const p of data as readonly Uint8Array[]) n += p.length;
  return n;
}

/** The smallest size class whose capacity holds `dataLen` bytes: [link command, body length]. */
export function classFor(dataLen: number): readonly [number, number] {
  for (const c of RELAY_CLASSES) if (dataLen <= messageCapacity(c[1])) return c;
  throw new RangeError(`relay message data of ${dataLen} bytes exceeds the largest cell`);
}

/**
 * The plaintext (M = bodyLen − 16 bytes) of a relay message: 8 zero bytes ‖ cmd ‖ stream ‖ length ‖ data,
 * zero to the end (the last {@link FILLER_LEN} bytes are the filler region).
 */
export function encodeMessage(
  bodyLen: number,
  cmd: number,
  stream: number,
  data: MessageData,
  prefix?: Uint8Array,
): Buffer {
  const len = dataLength(data) + (prefix?.length ?? 0);
  if (len > messageCapacity(bodyLen)) throw new RangeError('relay message data too long for its cell');
  // from Node's buffer pool (cells are under its 4 KiB limit), zeroed by hand: the padding and filler are zeros
  const out = Buffer.allocUnsafe(bodyLen - TAG_LEN).fill(0);
  out[RECOGNIZED_LEN] = cmd;
  out.writeUInt16BE(stream, RECOGNIZED_LEN + 1);
  out.writeUInt16BE(len, RECOGNIZED_LEN + 3);
  let at = MSG_HEADER_LEN;
  if (prefix) {
    out.set(prefix, at);
    at += prefix.length;
  }
  if (Array.isArray(data)) {
    for (const p of data as readonly Uint8Array[]) {
      out.set(p, at);
      at += p.length;
    }
  } else out.set(data as Uint8Array, at);
  return out;
}

/** Zeros that pad relay plaintexts, shared: only ever read (an input of GCM passes, never written). */
const ZEROS = Buffer.alloc((RELAY_CLASSES[RELAY_CLASSES.length - 1] as readonly [number, number])[1]);

/**
 * {@link encodeMessage} as parts (header ‖ prefix, data or its parts, zero padding): the same M bytes, with `data`
 * not copied.
 * The parts are views: `data` must not change until they are sealed.
 */
export function messageParts(
  bodyLen: number,
  cmd: number,
  stream: number,
  data: MessageData,
  prefix?: Uint8Array,
): Uint8Array[] {
  const pre = prefix?.length ?? 0;
  const len = dataLength(data) + pre;
  if (len > messageCapacity(bodyLen)) throw new RangeError('relay message data too long for its cell');
  // from Node's buffer pool (a few bytes)
  const head = Buffer.allocUnsafe(MSG_HEADER_LEN + pre).fill(0, 0, RECOGNIZED_LEN);
  head[RECOGNIZED_LEN] = cmd;
  head.writeUInt16BE(stream, RECOGNIZED_LEN + 1);
  head.writeUInt16BE(len, RECOGNIZED_LEN + 3);
  if (prefix) head.set(prefix, MSG_HEADER_LEN);
  const pad = ZEROS.subarray(0, bodyLen - TAG_LEN - MSG_HEADER_LEN - len);
  return Array.isArray(data)
    ? [head, ...(data as readonly Uint8Array[]), pad]
    : [head, data as Uint8Array, pad];
}

/**
 * The first bytes of a relay cell: its header and room for the outermost tag (5 + 16), from Node's buffer
 * pool; the ciphertext follows as separate parts (see LayerKey.sealParts).
 */
export function cellHead(circId: number, cmd: number): Buffer {
  const out = Buffer.allocUnsafe(CELL_HEADER_LEN + TAG_LEN);
  out.writeUInt32BE(circId >>> 0, 0);
  out[4] = cmd;
  return out;
}

/** An empty link cell of `cmd` with its header written; the body (BODY_LEN[cmd] bytes) is the caller's. */
export function cellFrame(circId: number, cmd: number): Buffer {
  const out = Buffer.allocUnsafe(CELL_HEADER_LEN + (BODY_LEN[cmd] as number));
  out.writeUInt32BE(circId >>> 0, 0);
  out[4] = cmd;
  return out;
}

/**
 * Parses a recognised plaintext; `data` is a view into it (the plaintext is the caller's own buffer). `length`
 * is the whole plaintext's when `plain` is only its first part (the client's parts, layers.ts): the message's
 * header and data must then lie inside that part.
 */
export function parseMessage(plain: Uint8Array, length: number = plain.length): RelayMessage {
  // Every cell's plaintext is longer than this; a shorter one is refused, never read past its end.
  if (plain.length < MSG_HEADER_LEN || length < MSG_HEADER_LEN + FILLER_LEN)
    throw new MeshError('protocol', 'relay message too short');
  const view = Buffer.from(plain.buffer, plain.byteOffset, plain.length);
  const cmd = view[RECOGNIZED_LEN] as number;
  const stream = view.readUInt16BE(RECOGNIZED_LEN + 1);
  const dataLen = view.readUInt16BE(RECOGNIZED_LEN + 3);
  if (cmd === 0 || cmd > MAX_MSG) throw new MeshError('protocol', `unknown relay message ${cmd}`);
  if (dataLen > length - MSG_HEADER_LEN - FILLER_LEN || MSG_HEADER_LEN + dataLen > plain.length) {
    throw new MeshError('protocol', `relay message length ${dataLen} exceeds its cell`);
  }
  return { cmd, stream, data: view.subarray(MSG_HEADER_LEN, MSG_HEADER_LEN + dataLen) };
}

// ── message data layouts ────────────────────────────────────────────────────────────────────────────

/** u64 as a JS number (offsets stay far below 2^53). */
export function readU64(b: Uint8Array, at: number): number {
  const v = Buffer.from(b.buffer, b.byteOffset, b.length).readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MeshError('protocol', 'offset out of range');
  return Number(v);
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** EXTEND data: target key ‖ addr length ‖ addr (`host:port` or empty) ‖ CREATE body. */
export interface ExtendRequest {
  publicKey: Uint8Array;
  addr: string;
  create: Uint8Array;
}

export function encodeExtend(r: ExtendRequest): Buffer {
  const addr = Buffer.from(r.addr, 'utf8');
  if (addr.length > 255) throw new RangeError('extend address too long');
  return Buffer.concat([r.publicKey, Uint8Array.of(addr.length), addr, r.create]);
}

export function parseExtend(data: Uint8Array): ExtendRequest {
  const create = BODY_LEN[0x01] as number;
  if (data.length < 33) throw new MeshError('protocol', 'EXTEND too short');
  const addrLen = data[32] as number;
  if (data.length !== 33 + addrLen + create) throw new MeshError('protocol', 'EXTEND has a bad length');
  return {
    publicKey: data.slice(0, 32),
    addr: Buffer.from(data.subarray(33, 33 + addrLen)).toString('utf8'),
    create: data.slice(33 + addrLen),
  };
}

/** END data: reason ‖ final offset. */
export function encodeEnd(reason: number, finalOffset: number): Buffer {
  return Buffer.concat([Uint8Array.of(reason), u64(finalOffset)]);
}

export function parseEnd(data: Uint8Array): { reason: number; finalOffset: number } {
  if (data.length !== 9) throw new MeshError('protocol', 'END has a bad length');
  return { reason: data[0] as number, finalOffset: readU64(data, 1) };
}

/** DATA data: offset ‖ bytes. */
export function encodeData(offset: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([u64(offset), bytes]);
}

export function parseData(data: Uint8Array): { offset: number; bytes: Buffer } {
  if (data.length < 8) throw new MeshError('protocol', 'DATA too short');
  return { offset: readU64(data, 0), bytes: Buffer.from(data.buffer, data.byteOffset + 8, data.length - 8) };
}

/** One SWITCH / SWITCHED entry. */
export interface SwitchEntry {
  stream: number;
  /** Bytes of the peer's direction received so far. */
  received: number;
  /** The peer's END has been received. */
  endReceived: boolean;
}

export function encodeSwitch(entries: readonly SwitchEntry[]): Buffer {
  const out = Buffer.alloc(1 + entries.length * 11);
  out[0] = entries.length;
  entries.forEach((e, i) => {
    const at = 1 + i * 11;
    out.writeUInt16BE(e.stream, at);
    out[at + 2] = e.endReceived ? 1 : 0;
    out.writeBigUInt64BE(BigInt(e.received), at + 3);
  });
  return out;
}

export function parseSwitch(data: Uint8Array): SwitchEntry[] {
  const n = data[0] ?? 0;
  if (data.length !== 1 + n * 11) throw new MeshError('protocol', 'SWITCH has a bad length');
  const out: SwitchEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = 1 + i * 11;
    out.push({
      stream: (data[at] as number) * 256 + (data[at + 1] as number),
      endReceived: ((data[at + 2] as number) & 1) === 1,
      received: readU64(data, at + 3),
    });
  }
  return out;
}
