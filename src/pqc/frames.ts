/**
 * Traffic frames of a live session (docs/protocol.md §4.5): `u32 length ‖ AES-256-GCM(type ‖ data) ‖ tag`,
 * with the 4 length bytes as associated data, a 96-bit nonce from a per-direction 64-bit counter, and a
 * one-way rekey every {@link REKEY_AFTER_FRAMES} frames.
 * @module
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { counterNonce, hkdf, wipe } from './_primitives.js';
import { TAG_LEN } from './_wire.js';
import { FrameError } from './errors.js';

/** Largest plaintext of one frame: 1 type byte + up to 65,535 data bytes (64 KiB, so AEAD cost per byte is low). */
export const MAX_FRAME_PLAINTEXT = 65_536;
/** Largest data bytes carried by one frame. */
export const MAX_FRAME_DATA = MAX_FRAME_PLAINTEXT - 1;
/** Largest value of a frame's length field (ciphertext ‖ tag); anything larger is refused before reading it. */
export const MAX_FRAME_LENGTH = MAX_FRAME_PLAINTEXT + TAG_LEN;
/** Frames per direction between rekeys: far under AES-GCM's limits (TLS 1.3 §5.5 allows 2^24.5 records). */
export const REKEY_AFTER_FRAMES = 2 ** 20;
/** Hard stop: a counter this high is never reached in practice, and a nonce must never repeat. */
export const MAX_FRAMES = 2 ** 48;

/** Frame types (first plaintext byte). */
export const FRAME_MORE = 0x00; // data, payload continues in the next frame
export const FRAME_END = 0x01; // data, last frame of a payload
export const FRAME_CLOSE = 0x02; // authenticated end of stream: no data

const REKEY_INFO = 'mmogit-pq/v1 rekey';

/** One direction's AEAD state: key, frame counter, rekey schedule. */
export class FrameCipher {
  #key: Uint8Array;
  #counter = 0;
  readonly #rekeyAfter: number;

  /** Takes ownership of `key` (wipes it on rekey and destroy). */
  constructor(key: Uint8Array, rekeyAfter = REKEY_AFTER_FRAMES) {
    if (key.length !== 32) throw new RangeError('AES-256-GCM key must be 32 bytes');
    this.#key = key;
    this.#rekeyAfter = rekeyAfter;
  }

  /** Frames processed so far in this direction. */
  get counter(): number {
    return this.#counter;
  }

  /** Seals one frame: the complete wire bytes, length prefix included. */
  seal(type: number, data: Uint8Array): Uint8Array {
    if (data.length > MAX_FRAME_DATA) throw new RangeError(`frame data over ${MAX_FRAME_DATA} bytes`);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(1 + data.length + TAG_LEN, 0);
    const c = createCipheriv('aes-256-gcm', this.#key, counterNonce(this.#next()));
    c.setAAD(header);
    const parts = [header, c.update(Uint8Array.of(type)), c.update(data), c.final()];
    parts.push(c.getAuthTag());
    return Buffer.concat(parts);
  }

  /**
   * Seals one frame whose data is the concatenation of `parts` (`length` bytes in all), encrypting part by
   * part: the same bytes as `seal(type, concat(parts))` without joining the parts first.
   */
  sealParts(type: number, parts: readonly Uint8Array[], length: number): Uint8Array {
    if (length > MAX_FRAME_DATA) throw new RangeError(`frame data over ${MAX_FRAME_DATA} bytes`);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(1 + length + TAG_LEN, 0);
    const c = createCipheriv('aes-256-gcm', this.#key, counterNonce(this.#next()));
    c.setAAD(header);
    const out: Uint8Array[] = [header, c.update(Uint8Array.of(type))];
    let seen = 0;
    for (const p of parts) {
      seen += p.length;
      if (p.length > 0) out.push(c.update(p));
    }
    if (seen !== length) throw new RangeError(`frame parts hold ${seen} bytes, not ${length}`);
    out.push(c.final(), c.getAuthTag());
    return Buffer.concat(out, 4 + 1 + length + TAG_LEN);
  }

  /**
   * Opens a frame's body (ciphertext ‖ tag) read after `header` (its 4 length bytes).
   * @throws FrameError `auth` when the frame was changed, reordered, replayed or dropped before it.
   */
  open(header: Uint8Array, body: Uint8Array): { type: number; data: Uint8Array } {
    const d = createDecipheriv('aes-256-gcm', this.#key, counterNonce(this.#next()));
    d.setAAD(header);
    d.setAuthTag(body.subarray(body.length - TAG_LEN));
    const plain = d.update(body.subarray(0, body.length - TAG_LEN));
    try {
      d.final();
    } catch (cause) {
      plain.fill(0);
      throw new FrameError('auth', 'frame failed authentication (tampered, reordered or replayed)', {
        cause,
      });
    }
    return { type: plain[0] as number, data: plain.subarray(1) };
  }

  /** Wipes the key; the cipher is unusable afterwards. */
  destroy(): void {
    wipe(this.#key);
    this.#counter = MAX_FRAMES;
  }

  #next(): number {
    const n = this.#counter;
    if (n >= MAX_FRAMES) throw new FrameError('malformed', 'frame counter exhausted or session destroyed');
    if (n > 0 && n % this.#rekeyAfter === 0) {
      // One-way ratchet: old traffic stays safe if this key later leaks.
      const next = hkdf(this.#key, new Uint8Array(0), REKEY_INFO);
      wipe(this.#key);
      this.#key = next;
    }
    this.#counter = n + 1;
    return n;
  }
}

/** Validates a frame's length field; throws before the body is read. */
export function checkFrameLength(length: number): void {
  if (length > MAX_FRAME_LENGTH) {
    throw new FrameError('too-large', `frame of ${length} bytes exceeds the maximum ${MAX_FRAME_LENGTH}`, {
      details: { length, max: MAX_FRAME_LENGTH },
    });
  }
  if (length < 1 + TAG_LEN) {
    throw new FrameError('malformed', `frame of ${length} bytes is shorter than type + tag`, {
      details: { length },
    });
  }
}
