import { describe, expect, it } from 'vitest';
import { OnionIsolation } from '../../src/transport/_onion-isolation.js';

const A = 'a'.repeat(56);
const B = 'b'.repeat(56);

describe('OnionIsolation', () => {
  it('keeps one key per onion until a dial fails, then moves only that onion to a new one', () => {
    const iso = new OnionIsolation();
    expect(iso.key(A)).toBe(A);
    expect(iso.key(A)).toBe(A);
    iso.failed(A);
    const next = iso.key(A);
    expect(next).not.toBe(A);
    expect(iso.key(A)).toBe(next); // stable until the next failure
    expect(iso.key(B)).toBe(B);
    iso.failed(A);
    expect(iso.key(A)).not.toBe(next);
    expect(new Set([A, next, iso.key(A)]).size).toBe(3);
  });

  it('bounds what it remembers: the least recently failed onion falls back to its base key', () => {
    const iso = new OnionIsolation();
    iso.failed(A);
    for (let i = 0; i < 4096; i++) iso.failed(`x${i}`);
    expect(iso.key(A)).toBe(A);
    expect(iso.key('x4095')).not.toBe('x4095');
  });
});
