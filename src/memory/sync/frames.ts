import { MmogitError } from '../../errors.js';
import type { ByteChannel } from '../../transport/byte-channel.js';
import { MAX_HAVE_BATCH, MAX_JSON_FRAME_BYTES, PACK_CHUNK_BYTES } from './limits.js';

/**
 * Framing of the sync protocol and the decoders of every control frame (docs/protocol.md §3, Sync): `u32 BE
 * length ‖ u8 type ‖ payload`. Each decoder takes the peer's bytes and returns a checked value or throws a
 * typed {@link MmogitError} (`ERR_SYNC` for a protocol violation) — never a `TypeError`, whatever JSON value
 * (null, an array, a number where an object belongs) the peer sends.
 * @module
 */

export const SYNC_PROTOCOL_VERSION = 'mmogit-sync/2';

/** Frame types. */
export const T = {
  hello: 1,
  ref: 2,
  want: 3,
  have: 4,
  bits: 5,
  pack: 6,
  packEnd: 7,
  result: 8,
  error: 9,
  packInfo: 10,
} as const;
export type FrameType = (typeof T)[keyof typeof T];

const TYPE_NAMES = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k])) as Record<number, string>;

/** The largest payload of each type: control frames are small; only PACK carries up to a chunk. */
function maxPayload(type: number): number {
  if (type === T.pack) return PACK_CHUNK_BYTES;
  if (type === T.bits) return Math.ceil(MAX_HAVE_BATCH / 8);
  return MAX_JSON_FRAME_BYTES;
}

export interface Frame {
  type: number;
  payload: Uint8Array;
}

export function protocolError(message: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError('ERR_SYNC', `sync protocol violation: ${message}`, details ? { details } : {});
}

export function untrusted(message: string, details?: Record<string, unknown>): MmogitError {
  return new MmogitError(
    'ERR_UNTRUSTED_DATA',
    `refused data from peer: ${message}`,
    details ? { details } : {},
  );
}

/** Marks an error that only reports the peer's own refusal (it is not echoed back as an ERROR frame). */
export class PeerRefusedError extends MmogitError {
  constructor(message: string, peerCode: string) {
    super('ERR_SYNC', `peer refused the sync: ${message}`, { details: { peerCode } });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Sends and receives frames; counts bytes both ways. */
export class Wire {
  bytesSent = 0;
  bytesReceived = 0;
  constructor(
    private readonly ch: ByteChannel,
    private readonly signal: AbortSignal,
  ) {}

  async send(type: FrameType, payload: Uint8Array | object): Promise<void> {
    const body = payload instanceof Uint8Array ? payload : encoder.encode(JSON.stringify(payload));
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length + 1);
    frame[4] = type;
    frame.set(body, 5);
    this.bytesSent += frame.length;
    await this.ch.write(frame, { signal: this.signal });
  }

  /** The next frame. An ERROR frame from the peer becomes a {@link PeerRefusedError}. */
  async recv(): Promise<Frame> {
    const head = await this.ch.readExactly(5, { signal: this.signal });
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    const type = head[4] as number;
    // The length is checked against the type's own limit before a byte of payload is read.
    if (len < 1 || len - 1 > maxPayload(type)) {
      throw new MmogitError('ERR_TOO_LARGE', `sync ${TYPE_NAMES[type] ?? type} frame of ${len} bytes`, {
        details: { len, type },
      });
    }
    const payload = len > 1 ? await this.ch.readExactly(len - 1, { signal: this.signal }) : new Uint8Array(0);
    this.bytesReceived += 4 + len;
    if (type === T.error) {
      const e = decodeError(payload);
      throw new PeerRefusedError(e.message, e.code);
    }
    return { type, payload };
  }

  async expect(type: FrameType): Promise<Uint8Array> {
    const f = await this.recv();
    if (f.type !== type) {
      throw protocolError(`expected ${TYPE_NAMES[type]}, got ${TYPE_NAMES[f.type] ?? f.type}`);
    }
    return f.payload;
  }
}

export function frameName(type: number): string {
  return TYPE_NAMES[type] ?? String(type);
}

/** A JSON object payload (not null, not an array), else ERR_SYNC. */
export function jsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new MmogitError('ERR_SYNC', `malformed sync ${what} message`, { cause: e });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw protocolError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

const OID_RE = /^[0-9a-f]{40}$/;
const NONCE_RE = /^[0-9a-f]{64}$/;
const SIG_RE = /^[0-9a-f]{128}$/;
const ONION_RE = /^[a-z2-7]{56}\.onion$/;

export interface Hello {
  proto: string;
  onion: string;
  nonce: string;
}

/** HELLO `{proto, onion, nonce}`. An unknown `proto` is refused with the version this side speaks. */
export function decodeHello(bytes: Uint8Array): Hello {
  const h = jsonObject(bytes, 'hello');
  if (h.proto !== SYNC_PROTOCOL_VERSION) {
    const theirs = typeof h.proto === 'string' ? h.proto.slice(0, 40) : typeof h.proto;
    throw protocolError(
      `unsupported protocol ${JSON.stringify(theirs)} (this side speaks ${SYNC_PROTOCOL_VERSION})`,
      {
        expected: SYNC_PROTOCOL_VERSION,
      },
    );
  }
  if (typeof h.onion !== 'string' || !ONION_RE.test(h.onion)) throw protocolError('bad onion in hello');
  if (typeof h.nonce !== 'string' || !NONCE_RE.test(h.nonce)) throw protocolError('bad nonce');
  return { proto: h.proto, onion: h.onion, nonce: h.nonce };
}

/** REF `{head, sig}`: head a commit id or null, sig 64 bytes hex. */
export function decodeRef(bytes: Uint8Array): { head: string | null; sig: string } {
  const r = jsonObject(bytes, 'ref');
  const head = r.head;
  if (head !== null && (typeof head !== 'string' || !OID_RE.test(head))) throw protocolError('bad head');
  if (typeof r.sig !== 'string' || !SIG_RE.test(r.sig)) throw protocolError('bad ref signature');
  return { head, sig: r.sig };
}

/** WANT `{need}`. */
export function decodeWant(bytes: Uint8Array): { need: boolean } {
  const w = jsonObject(bytes, 'want');
  if (typeof w.need !== 'boolean') throw protocolError('bad want');
  return { need: w.need };
}

/** HAVE `{ids}`: 1..MAX_HAVE_BATCH distinct commit ids. */
export function decodeHave(bytes: Uint8Array): string[] {
  const h = jsonObject(bytes, 'have');
  const ids = h.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_HAVE_BATCH)
    throw protocolError('bad have list');
  for (const id of ids) if (typeof id !== 'string' || !OID_RE.test(id)) throw protocolError('bad id in have');
  return ids as string[];
}

/** BITS: exactly ceil(n / 8) bytes for a HAVE of n ids. */
export function decodeBits(bytes: Uint8Array, n: number): (i: number) => boolean {
  if (bytes.length !== Math.ceil(n / 8)) throw protocolError('bitmap length');
  return (i) => (((bytes[i >> 3] as number) >> (i & 7)) & 1) === 1;
}

export interface PackInfo {
  objects: number;
  rawBytes: number;
}

/** PACK-INFO `{objects, rawBytes}`: what the pack that follows holds, announced before any byte of it. */
export function decodePackInfo(bytes: Uint8Array): PackInfo {
  const p = jsonObject(bytes, 'pack-info');
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!ok(p.objects) || !ok(p.rawBytes) || p.objects === 0) throw protocolError('bad pack-info');
  return { objects: p.objects, rawBytes: p.rawBytes };
}

/** PACK-END `{}`. */
export function decodePackEnd(bytes: Uint8Array): void {
  jsonObject(bytes, 'pack-end');
}

/** RESULT `{head}`. */
export function decodeResult(bytes: Uint8Array): { head: string | null } {
  const r = jsonObject(bytes, 'result');
  if (r.head !== null && (typeof r.head !== 'string' || !OID_RE.test(r.head)))
    throw protocolError('bad result');
  return { head: r.head };
}

/**
 * ERROR `{code, message}`, made safe to show: an unknown shape gives a generic reason, the code must look like
 * one of ours, and the message is cut short with control characters replaced (it may reach a terminal).
 */
export function decodeError(bytes: Uint8Array): { code: string; message: string } {
  let e: Record<string, unknown> = {};
  try {
    e = jsonObject(bytes, 'error');
  } catch {
    // A malformed refusal is still a refusal.
  }
  const code = typeof e.code === 'string' && /^ERR_[A-Z_]{1,40}$/.test(e.code) ? e.code : 'ERR_UNKNOWN';
  const message =
    typeof e.message === 'string' && e.message.length > 0
      ? printable(e.message.slice(0, 300))
      : 'unknown error';
  return { code, message };
}

/** `text` with C0 and C1 control characters (and DEL) replaced by `?`. */
export function printable(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? '?' : ch;
  }
  return out;
}
