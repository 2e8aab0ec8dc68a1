/**
 * The preface of a direct messaging stream (docs/protocol.md §5.11): the bytes a dialler sends first on a tor
 * stream to the onion's direct messaging port, naming the message protocol it wants, and the one-byte answer.
 * After an accepting answer the PQ handshake (docs/protocol.md §4) starts on the same stream, exactly as on a
 * libp2p stream of that protocol.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import { MmogitError } from '../errors.js';
import type { ByteChannel } from '../transport/byte-channel.js';

/**
 * The onion's virtual port of direct messaging: `<onion>:4002`, beside libp2p's 4001. A peer that does not publish
 * it answers a SOCKS connect with "connection refused" (reply 5), and the dialler falls back to libp2p.
 */
export const DIRECT_MESSAGING_PORT = 4002;

/** ASCII magic and version of the preface: `mmogit-direct/1`. */
const MAGIC = new TextEncoder().encode('mmogit-direct/1');
/** Longest protocol id a preface may name. */
export const MAX_PREFACE_PROTOCOL = 64;
/** A protocol id: a path of printable ASCII, as libp2p's (`/mmogit/msg/2.0.0`). */
const PROTOCOL_RE = /^\/[\x21-\x7e]{1,63}$/;

/** The answer byte: the stream is the protocol's from the next byte on. */
export const DIRECT_ACCEPTED = 0x00;
/** The answer byte: this agent does not serve that protocol directly (the dialler tries libp2p). */
export const DIRECT_UNSUPPORTED = 0x01;
/** The answer byte: this agent holds as many direct streams as it admits. */
export const DIRECT_BUSY = 0x02;

/** `magic ‖ 0x00 ‖ length (1 byte) ‖ protocol` */
export function encodePreface(protocol: string): Uint8Array {
  if (!PROTOCOL_RE.test(protocol)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `not a protocol id for a direct stream: ${protocol}`);
  }
  const id = new TextEncoder().encode(protocol);
  const out = new Uint8Array(MAGIC.length + 2 + id.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = 0;
  out[MAGIC.length + 1] = id.length;
  out.set(id, MAGIC.length + 2);
  return out;
}

/**
 * Reads a preface from `channel` and returns the protocol it names. Anything else — other magic, a length out of
 * range, bytes outside printable ASCII — is ERR_BAD_FRAME, read no further than the preface's fixed bound.
 */
export async function readPreface(channel: ByteChannel, options: AbortOptions = {}): Promise<string> {
  const head = await channel.readExactly(MAGIC.length + 2, options);
  for (let i = 0; i < MAGIC.length; i++) {
    if (head[i] !== MAGIC[i]) throw new MmogitError('ERR_BAD_FRAME', 'not a direct messaging preface');
  }
  const length = head[MAGIC.length + 1] as number;
  if (head[MAGIC.length] !== 0 || length < 2 || length > MAX_PREFACE_PROTOCOL) {
    throw new MmogitError('ERR_BAD_FRAME', 'direct messaging preface: bad protocol length', {
      details: { length },
    });
  }
  const protocol = new TextDecoder().decode(await channel.readExactly(length, options));
  if (!PROTOCOL_RE.test(protocol)) {
    throw new MmogitError('ERR_BAD_FRAME', 'direct messaging preface: not a protocol id');
  }
  return protocol;
}
