import { describe, expect, it } from 'vitest';
import { describeValue } from '../src/errors.js';

describe('describeValue', () => {
  it('prints primitives and quotes and cuts strings', () => {
    expect(describeValue('abc')).toBe('"abc"');
    expect(describeValue('x'.repeat(50), 10)).toBe(`"${'x'.repeat(10)}…"`);
    expect(describeValue(3)).toBe('3');
    expect(describeValue(false)).toBe('false');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
  });

  it('never calls into an object, however hostile', () => {
    const throwing = {
      toString() {
        throw new Error('called');
      },
      [Symbol.toPrimitive]() {
        throw new Error('called');
      },
    };
    // Each of these makes String(x) or `${x}` throw a TypeError or run the peer's code.
    expect(() => String({ toString: '' })).toThrow(TypeError);
    expect(describeValue({ toString: '' })).toBe('an object');
    expect(describeValue(throwing)).toBe('an object');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue([{ toString: 1 }])).toBe('an array');
  });
});
