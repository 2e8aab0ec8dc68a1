import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { counterNonce } from '../../src/pqc/_primitives.js';
import {
  checkFrameLength,
  FRAME_END,
  FrameCipher,
  MAX_FRAME_DATA,
  MAX_FRAME_LENGTH,
} from '../../src/pqc/frames.js';

const key = () => new Uint8Array(randomBytes(32));

function roundTrip(sender: FrameCipher, receiver: FrameCipher, data: Uint8Array) {
  const wire = sender.seal(FRAME_END, data);
  return receiver.open(wire.subarray(0, 4), wire.subarray(4));
}

describe('frames', () => {
  it('nonce is 4 zero bytes ‖ 64-bit big-endian counter', () => {
    expect(counterNonce(0).toString('hex')).toBe('000000000000000000000000');
    expect(counterNonce(1).toString('hex')).toBe('000000000000000000000001');
    expect(counterNonce(2 ** 40 + 5).toString('hex')).toBe('000000000000010000000005');
  });

  it('a full frame is 4 + 65,536 + 16 bytes and its length field says so', () => {
    const k = key();
    const s = new FrameCipher(Uint8Array.from(k));
    const r = new FrameCipher(Uint8Array.from(k));
    const data = new Uint8Array(randomBytes(MAX_FRAME_DATA));
    const wire = s.seal(FRAME_END, data);
    expect(wire.length).toBe(4 + 65_536 + 16);
    expect(Buffer.from(wire).readUInt32BE(0)).toBe(MAX_FRAME_LENGTH);
    const out = r.open(wire.subarray(0, 4), wire.subarray(4));
    expect(out.type).toBe(FRAME_END);
    expect(Buffer.from(out.data).equals(Buffer.from(data))).toBe(true);
    expect(() => s.seal(FRAME_END, new Uint8Array(MAX_FRAME_DATA + 1))).toThrow(RangeError);
  });

  it('both ends rekey in step; an end that did not rekey can no longer read', () => {
    const k = key();
    const s = new FrameCipher(Uint8Array.from(k), 3);
    const r = new FrameCipher(Uint8Array.from(k), 3);
    const stale = new FrameCipher(Uint8Array.from(k), 1_000);
    for (let n = 0; n < 10; n++) {
      const data = Uint8Array.of(n);
      const wire = s.seal(FRAME_END, data);
      expect(r.open(wire.subarray(0, 4), wire.subarray(4)).data[0]).toBe(n);
      if (n < 3) expect(stale.open(wire.subarray(0, 4), wire.subarray(4)).data[0]).toBe(n);
      else if (n === 3)
        expect(() => stale.open(wire.subarray(0, 4), wire.subarray(4))).toThrow(/authentication/);
    }
    expect(s.counter).toBe(10);
  });

  it('the same plaintext never gives the same ciphertext twice (counter nonces)', () => {
    const s = new FrameCipher(key());
    const a = Buffer.from(s.seal(FRAME_END, Uint8Array.of(1, 2, 3)));
    const b = Buffer.from(s.seal(FRAME_END, Uint8Array.of(1, 2, 3)));
    expect(a.equals(b)).toBe(false);
  });

  it('a destroyed cipher refuses to work', () => {
    const k = key();
    const s = new FrameCipher(k);
    s.destroy();
    expect(k.every((b) => b === 0)).toBe(true);
    expect(() => s.seal(FRAME_END, Uint8Array.of(1))).toThrow(/exhausted|destroyed/);
  });

  it('length limits', () => {
    expect(() => checkFrameLength(MAX_FRAME_LENGTH)).not.toThrow();
    expect(() => checkFrameLength(MAX_FRAME_LENGTH + 1)).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_LARGE' }),
    );
    expect(() => checkFrameLength(16)).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
    expect(() => checkFrameLength(17)).not.toThrow();
  });

  it('round trip of an empty frame', () => {
    const k = key();
    expect(
      roundTrip(new FrameCipher(Uint8Array.from(k)), new FrameCipher(k), new Uint8Array(0)).data.length,
    ).toBe(0);
  });
});
