// The pure parts of the file-transfer wire format: stored names, frame decoding, offers.
import { describe, expect, it } from 'vitest';
import {
  decodeFileRecord,
  encodeFileControl,
  encodeFileData,
  FILE_CHUNK_BYTES,
  MAX_FILE_CONTROL_BYTES,
  parseFileInfo,
  parseFileOffer,
  sanitiseFileName,
  signFileOffer,
  storedFileName,
  verifyFileOffer,
} from '../../src/agent/files-wire.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MAX_FRAME_DATA } from '../../src/pqc/frames.js';

describe('sanitiseFileName', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['../../.ssh/authorized_keys', '_._.ssh_authorized_keys'],
    ['..', 'file'],
    ['.hidden', 'hidden'],
    ['a/b\\c', 'a_b_c'],
    ['évé\u0000nt\n.txt', '_v__nt_.txt'],
    ['', 'file'],
    ['x'.repeat(300), 'x'.repeat(100)],
  ])('%j → %j', (name, safe) => {
    const got = sanitiseFileName(name);
    expect(got).toBe(safe);
    expect(got).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/);
    expect(got).not.toContain('..');
  });

  it('the stored name is the offer id, a dash and the sanitised name', () => {
    expect(storedFileName({ id: 'ab'.repeat(16), body: { name: '../x' } })).toBe(`${'ab'.repeat(16)}-_x`);
  });
});

describe('file frames', () => {
  it('a chunk with its tag is exactly one PQ traffic frame', () => {
    expect(1 + FILE_CHUNK_BYTES).toBe(MAX_FRAME_DATA);
  });

  it('data and control frames round-trip', () => {
    const d = decodeFileRecord(encodeFileData(Uint8Array.of(1, 2, 3)));
    expect(d.kind === 'data' && [...d.chunk]).toEqual([1, 2, 3]);
    for (const f of [{ t: 'accept', offset: 5 }, { t: 'ack', offset: 0 }, { t: 'end' }] as const) {
      expect(decodeFileRecord(encodeFileControl(f))).toEqual({ kind: 'control', frame: f });
    }
  });

  it.each([
    ['a negative offset', { t: 'ack', offset: -1 }],
    ['a fractional offset', { t: 'accept', offset: 1.5 }],
    ['an unknown type', { t: 'nope' }],
    ['no type', { offset: 1 }],
  ])('refuses %s (ERR_BAD_FRAME)', (_what, frame) => {
    expect(() => decodeFileRecord(Buffer.from(JSON.stringify(frame)))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME' }),
    );
  });

  it('refuses an oversized data or control record before parsing (ERR_TOO_LARGE), and non-JSON', () => {
    expect(() => decodeFileRecord(new Uint8Array(FILE_CHUNK_BYTES + 2))).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_LARGE' }),
    );
    const big = new Uint8Array(MAX_FILE_CONTROL_BYTES + 1).fill(0x7b);
    expect(() => decodeFileRecord(big)).toThrow(expect.objectContaining({ code: 'ERR_TOO_LARGE' }));
    expect(() => decodeFileRecord(Uint8Array.of(0x7b, 0xff))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME' }),
    );
    expect(() => decodeFileRecord(new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME' }),
    );
  });
});

describe('file offers', () => {
  const alice = AgentKey.random();
  const bob = AgentKey.random();
  const info = { name: 'a.txt', size: 3, sha256: 'a'.repeat(64) };

  it('is a signed version 2 message of type file; a changed size no longer verifies', () => {
    const offer = signFileOffer(alice, bob.onion, info);
    expect(offer.message).toMatchObject({ v: 2, type: 'file', body: info, from: alice.onion, to: bob.onion });
    expect(verifyFileOffer(offer)).toBe(true);
    const forged = parseFileOffer({ ...offer.message, body: { ...info, size: 4 } }, offer.sig);
    expect(verifyFileOffer(forged)).toBe(false);
  });

  it.each([
    ['extra members', { ...info, path: '/etc' }],
    ['an empty name', { ...info, name: '' }],
    ['a name over 255 bytes', { ...info, name: 'é'.repeat(128) }],
    ['a negative size', { ...info, size: -1 }],
    ['an unsafe size', { ...info, size: 2 ** 53 }],
    ['a bad hash', { ...info, sha256: 'A'.repeat(64) }],
  ])('refuses a body with %s', (_what, body) => {
    expect(() => parseFileInfo(body)).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
  });

  it('refuses an offer of another type', () => {
    const offer = signFileOffer(alice, bob.onion, info);
    expect(() => parseFileOffer({ ...offer.message, type: 'message' }, offer.sig)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME' }),
    );
  });
});
