import { describe, expect, it } from 'vitest';
import { isCanonicalOnion, onionHostname } from '../../src/agent/messaging-onion.js';
import { AgentKey } from '../../src/identity/keys.js';
import { parseOnionAddress } from '../../src/identity/onion.js';

describe('messaging onion memo', () => {
  it('gives the answers of the full check, also on repeated and mixed-case inputs', () => {
    const onion = AgentKey.random().onion;
    const id = onion.slice(0, -'.onion'.length);
    for (let i = 0; i < 2; i++) {
      for (const input of [onion, id, onion.toUpperCase(), ` ${id.toUpperCase()}.onion `]) {
        expect(onionHostname(input)).toBe(parseOnionAddress(input).hostname);
      }
      expect(isCanonicalOnion(onion)).toBe(true);
      // Valid, but not the canonical form a signed envelope must carry.
      expect(isCanonicalOnion(onion.toUpperCase())).toBe(false);
      expect(isCanonicalOnion(id)).toBe(false);
    }
  });

  it('refuses an invalid address every time (invalid inputs are not memoised)', () => {
    const onion = AgentKey.random().onion;
    // One character changed: the checksum no longer matches.
    const bad = `${onion[0] === 'a' ? 'b' : 'a'}${onion.slice(1)}`;
    for (let i = 0; i < 3; i++) {
      expect(() => onionHostname(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ONION' }));
      expect(isCanonicalOnion(bad)).toBe(false);
    }
    expect(isCanonicalOnion(42)).toBe(false);
  });

  it('stays correct past its bound (the oldest entries go)', () => {
    const onions = Array.from({ length: 1100 }, () => AgentKey.random().onion);
    for (const o of onions) expect(isCanonicalOnion(o)).toBe(true);
    expect(onionHostname(onions[0] as string)).toBe(onions[0]);
  });
});
