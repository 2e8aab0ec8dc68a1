import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ADVERT_MAX_BYTES,
  ADVERT_MAX_SKEW_MS,
  createAdvertisement,
  decodeAdvertisement,
  encodeAdvertisement,
  MMOGIT_PROTOCOL_BINDING,
  verifyAdvertisement,
} from '../../src/discovery/index.js';
import { MmogitError } from '../../src/errors.js';
import { AgentKey, type CanonicalValue, canonicalBytes } from '../../src/identity/index.js';
import { propertyParams } from '../helpers/property.js';
import { resign } from './_helpers.js';

const NOW = 1_800_000_000_000;
const alice = AgentKey.fromSeed(new Uint8Array(32).fill(1));
const bob = AgentKey.fromSeed(new Uint8Array(32).fill(2));

function reasonOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    expect((e as { code?: string }).code).toBe('ERR_INVALID_RECORD');
    return (e as { details?: { reason?: string } }).details?.reason;
  }
  throw new Error('expected a rejection');
}

describe('advertisement', () => {
  const signed = createAdvertisement(alice, {
    services: ['memory_sync', 'messaging', 'memory_sync'],
    name: 'alice',
    port: 4001,
    now: NOW,
  });

  it('round-trips and verifies', () => {
    const v = verifyAdvertisement(signed.bytes, { now: NOW + 1000 });
    expect(v.advert).toEqual(signed.advert);
    expect(v.publicKey).toEqual(alice.publicKey);
    expect(v.advert.services).toEqual(['memory_sync', 'messaging']);
    expect(v.advert.onion).toBe(alice.onion);
    expect(v.advert.addrs).toEqual([`/onion3/${alice.serviceId}:4001`]);
    expect(v.advert.pq).toEqual({ suites: ['hybrid-x25519-mlkem768'], version: 1 });
    expect(decodeAdvertisement(encodeAdvertisement(signed.advert))).toEqual(signed.advert);
    // object input verifies the same as bytes
    expect(verifyAdvertisement(signed.advert, { now: NOW }).bytes).toEqual(signed.bytes);
    expect(signed.bytes.length).toBeLessThan(ADVERT_MAX_BYTES / 2);
  });

  it('carries an A2A-shaped card whose skills are the services and whose interface is the onion', () => {
    const card = signed.advert.card;
    expect(card.skills.map((s) => s.id)).toEqual(['memory_sync', 'messaging']);
    expect(card.supportedInterfaces[0]).toEqual({
      url: `mmogit://${alice.onion}:4001`,
      protocolBinding: MMOGIT_PROTOCOL_BINDING,
      protocolVersion: '1.0',
    });
    expect(new URL(card.url).hostname).toBe(alice.onion);
    for (const k of [
      'name',
      'description',
      'version',
      'capabilities',
      'defaultInputModes',
      'defaultOutputModes',
    ])
      expect(card).toHaveProperty(k);
  });

  it('rejects a tampered signature', () => {
    const a = structuredClone(signed.advert);
    a.signature = a.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    expect(reasonOf(() => verifyAdvertisement(a, { now: NOW }))).toBe('signature');
    const b = structuredClone(signed.advert);
    b.services = ['memory_sync'];
    b.card.skills = b.card.skills.slice(0, 1);
    expect(reasonOf(() => verifyAdvertisement(b, { now: NOW }))).toBe('signature');
  });

  it("rejects the onion of another key, even when signed by the pubkey's owner", () => {
    const { signature: _s, ...body } = structuredClone(signed.advert);
    body.onion = bob.onion;
    expect(reasonOf(() => verifyAdvertisement(resign(alice, body), { now: NOW }))).toBe('onion-binding');
    // and bob cannot claim alice's onion with his key either
    const { signature: _t, ...body2 } = structuredClone(signed.advert);
    body2.pubkey = bob.publicKeyHex;
    expect(reasonOf(() => verifyAdvertisement(resign(bob, body2), { now: NOW }))).toBe('onion-binding');
    // a card pointing at another onion
    const { signature: _u, ...body3 } = structuredClone(signed.advert);
    body3.card.supportedInterfaces[0]!.url = `mmogit://${bob.onion}:4001`;
    expect(reasonOf(() => verifyAdvertisement(resign(alice, body3), { now: NOW }))).toBe('onion-binding');
    // an addr on another onion
    const { signature: _w, ...body4 } = structuredClone(signed.advert);
    body4.addrs = [`/onion3/${bob.serviceId}:4001`];
    expect(reasonOf(() => verifyAdvertisement(resign(alice, body4), { now: NOW }))).toBe('addrs');
  });

  it('rejects expired, future-dated and over-long records', () => {
    expect(reasonOf(() => verifyAdvertisement(signed.bytes, { now: signed.advert.expiresAt }))).toBe(
      'expired',
    );
    expect(reasonOf(() => verifyAdvertisement(signed.bytes, { now: NOW - ADVERT_MAX_SKEW_MS - 1 }))).toBe(
      'future',
    );
    expect(verifyAdvertisement(signed.bytes, { now: NOW - ADVERT_MAX_SKEW_MS + 1 })).toBeTruthy();
    const { signature: _s, ...body } = structuredClone(signed.advert);
    body.expiresAt = body.issuedAt + 48 * 3600_000;
    expect(reasonOf(() => verifyAdvertisement(resign(alice, body), { now: NOW }))).toBe('lifetime');
  });

  it('rejects oversized records before parsing, and refuses to create them', () => {
    const { signature: _s, ...body } = structuredClone(signed.advert);
    body.card.description = 'x'.repeat(ADVERT_MAX_BYTES);
    const big = resign(alice, body);
    expect(big.length).toBeGreaterThan(ADVERT_MAX_BYTES);
    expect(reasonOf(() => verifyAdvertisement(big, { now: NOW }))).toBe('too-large');
    expect(() =>
      createAdvertisement(alice, { services: ['memory_sync'], description: 'x'.repeat(ADVERT_MAX_BYTES) }),
    ).toThrow(expect.objectContaining({ code: 'ERR_TOO_LARGE' }));
  });

  it('rejects non-canonical encodings, wrong versions and unknown members', () => {
    const pretty = new TextEncoder().encode(JSON.stringify(signed.advert, null, 1));
    expect(reasonOf(() => verifyAdvertisement(pretty, { now: NOW }))).toBe('non-canonical');
    const { signature: _s, ...body } = structuredClone(signed.advert);
    expect(reasonOf(() => verifyAdvertisement(resign(alice, { ...body, version: 2 }), { now: NOW }))).toBe(
      'version',
    );
    expect(
      reasonOf(() => verifyAdvertisement(resign(alice, { ...body, extra: 1 } as never), { now: NOW })),
    ).toBe('malformed');
    expect(reasonOf(() => verifyAdvertisement(new Uint8Array([0xff, 0xfe]), { now: NOW }))).toBe('malformed');
  });

  it('rejects bad service lists', () => {
    expect(() => createAdvertisement(alice, { services: [] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => createAdvertisement(alice, { services: ['Bad Name'] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    const { signature: _s, ...body } = structuredClone(signed.advert);
    body.services = ['messaging', 'memory_sync'];
    expect(reasonOf(() => verifyAdvertisement(resign(alice, body), { now: NOW }))).toBe('services');
  });

  it('property: any single-byte change of the wire form is rejected', () => {
    fc.assert(
      fc.property(fc.nat({ max: signed.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const b = Uint8Array.from(signed.bytes);
        b[i] = (b[i] as number) ^ x;
        expect(() => verifyAdvertisement(b, { now: NOW })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_RECORD' }),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('property: created adverts verify for any services/name within limits', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,20}$/), { minLength: 1, maxLength: 8 }),
        fc.string({ maxLength: 100 }),
        (services, name) => {
          const s = createAdvertisement(alice, { services, name, now: NOW });
          const v = verifyAdvertisement(s.bytes, { now: NOW });
          expect(v.advert.services).toEqual([...services].sort());
          expect(v.advert.card.name).toBe(name);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('advertisement decoder under hostile input', () => {
  const signed = createAdvertisement(alice, {
    services: ['memory_sync'],
    name: 'alice',
    port: 4001,
    now: NOW,
  });

  function verifiesOrTyped(bytes: Uint8Array): void {
    try {
      verifyAdvertisement(bytes, { now: NOW + 1000 });
    } catch (e) {
      expect(e, String(e)).toBeInstanceOf(MmogitError);
      expect((e as MmogitError).code).toBe('ERR_INVALID_RECORD');
    }
  }

  it('property: any JSON value (as bytes, canonical or not) is refused with ERR_INVALID_RECORD', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        verifiesOrTyped(new TextEncoder().encode(JSON.stringify(value) ?? 'null'));
        try {
          verifiesOrTyped(canonicalBytes(value as CanonicalValue));
        } catch (e) {
          expect(e).toBeInstanceOf(MmogitError); // canonicalBytes itself: -0 and the like
        }
      }),
      propertyParams('advert jsonValue', { numRuns: 500 }),
    );
  });

  it('property: a re-signed advert with one member (or card member) replaced by any JSON value', () => {
    const paths = [
      ['version'],
      ['pubkey'],
      ['onion'],
      ['addrs'],
      ['services'],
      ['pq'],
      ['pq', 'suites'],
      ['pq', 'version'],
      ['issuedAt'],
      ['expiresAt'],
      ['card'],
      ['card', 'name'],
      ['card', 'description'],
      ['card', 'skills'],
      ['card', 'supportedInterfaces'],
      ['card', 'unknown'],
      ['extra'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
        const { signature: _s, ...body } = structuredClone(signed.advert) as unknown as Record<
          string,
          unknown
        >;
        let at = body as Record<string, unknown>;
        for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
        at[path[path.length - 1] as string] = value;
        let bytes: Uint8Array;
        try {
          bytes = resign(alice, body as never);
        } catch {
          return; // not canonical-encodable: cannot be signed, so never on the wire
        }
        verifiesOrTyped(bytes);
      }),
      propertyParams('advert near-miss', { numRuns: 1_000 }),
    );
  });
});
