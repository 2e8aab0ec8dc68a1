// The canonical-value guard and converter (src/identity/canonical.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, isCanonicalValue, toCanonical } from '../../src/identity/canonical.js';

describe('isCanonicalValue / toCanonical', () => {
  it('accepts every JSON value and encodes it as JSON.parse reads it back', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(isCanonicalValue(v)).toBe(true);
        expect(JSON.parse(canonicalJson(toCanonical(v)))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what has no canonical encoding, at any depth', () => {
    class Point {
      x = 1;
    }
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      () => 1,
      1n,
      Symbol('s'),
      new Point(),
      new Date(0),
      { a: [1, { b: Number.NaN }] },
      [undefined],
    ]) {
      expect(isCanonicalValue(bad)).toBe(false);
      expect(() => toCanonical(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    // undefined members are dropped, as canonicalJson does
    expect(canonicalJson(toCanonical({ b: 1, a: undefined }))).toBe('{"b":1}');
  });
});
