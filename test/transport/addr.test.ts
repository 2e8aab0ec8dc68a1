import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import {
  DEFAULT_ONION_VIRTUAL_PORT,
  onionFromPeerId,
  onionMultiaddr,
  onionOfMultiaddr,
  parseTarget,
  peerIdFromOnion,
} from '../../src/transport/addr.js';

describe('onion ↔ PeerId', () => {
  it('is one key: the PeerId of an onion holds the same Ed25519 key, and maps back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const key = AgentKey.fromSeed(seed);
        const peerId = peerIdFromOnion(key.onion);
        expect(peerId.type).toBe('Ed25519');
        expect(Buffer.from(peerId.publicKey!.raw).equals(Buffer.from(key.publicKey))).toBe(true);
        expect(onionFromPeerId(peerId)).toBe(key.onion);
        expect(peerIdFromOnion(key.serviceId.toUpperCase()).equals(peerId)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('rejects an onion with a bad checksum', () => {
    const key = AgentKey.random();
    const broken = (key.serviceId[0] === 'a' ? 'b' : 'a') + key.serviceId.slice(1);
    expect(() => peerIdFromOnion(broken)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ONION' }));
  });

  it('builds and parses /onion3 multiaddrs', () => {
    const key = AgentKey.random();
    const ma = onionMultiaddr(key.onion, 4242);
    expect(ma.toString()).toBe(`/onion3/${key.serviceId}:4242`);
    expect(onionOfMultiaddr(ma)).toEqual({ serviceId: key.serviceId, port: 4242 });
    expect(() => onionMultiaddr(key.onion, 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('parseTarget', () => {
  const key = AgentKey.random();
  const peerId = peerIdFromOnion(key.onion).toString();

  it('binds an onion target to its key with /p2p', () => {
    for (const target of [key.onion, key.serviceId, `${key.onion}:5000`]) {
      const t = parseTarget(target);
      expect(t.kind).toBe('onion');
      const port = target.endsWith(':5000') ? 5000 : DEFAULT_ONION_VIRTUAL_PORT;
      expect(t.kind === 'onion' && t.multiaddr.toString()).toBe(
        `/onion3/${key.serviceId}:${port}/p2p/${peerId}`,
      );
    }
  });

  it('refuses an onion multiaddr whose /p2p names another key', () => {
    const other = peerIdFromOnion(AgentKey.random().onion).toString();
    try {
      parseTarget(`/onion3/${key.serviceId}:4001/p2p/${other}`);
      expect.unreachable();
    } catch (e) {
      expect(hasCode(e, 'ERR_INVALID_MULTIADDR')).toBe(true);
    }
  });

  it('parses direct multiaddrs and PeerIds', () => {
    const d = parseTarget(`/ip4/127.0.0.1/tcp/1234/p2p/${peerId}`);
    expect(d.kind).toBe('multiaddr');
    expect(d.peerId?.toString()).toBe(peerId);
    expect(parseTarget(peerId)).toMatchObject({ kind: 'peer' });
    expect(() => parseTarget('not a target')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => parseTarget('/nonsense/1')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_MULTIADDR' }),
    );
  });
});
