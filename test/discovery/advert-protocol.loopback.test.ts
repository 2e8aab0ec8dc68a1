// The direct advertisement fetch (/mmogit/advert/1.0.0) on real libp2p nodes over loopback TCP: honest
// providers answer with their signed advert; hostile providers (hand-written handlers: the only way to make
// the real part misbehave) serving forged, oversized, expired, other-key or garbage bytes, or nothing at all,
// are refused, and discover falls back to their DHT record when they have one.
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADVERT_HEDGE_MS,
  ADVERT_MAX_BYTES,
  ADVERT_PROTOCOL,
  bootstrapDialer,
  createAdvertisement,
  Discovery,
  fetchAdvert,
  serviceProviderKey,
  type VerifiedAdvertisement,
} from '../../src/discovery/index.js';
import { MmogitError } from '../../src/errors.js';
import { canonicalBytes } from '../../src/identity/index.js';
import { propertyParams } from '../helpers/property.js';
import { type LoopbackAgent, routingTableSize, startLoopbackAgent } from '../support/loopback.js';
import { collect, resign, waitFor } from './_helpers.js';

/** Serves `frame` raw on the advert protocol (a varint length + body unless `raw`), replacing any handler. */
async function serveRaw(a: LoopbackAgent, frame: Uint8Array | 'hang', raw = false): Promise<void> {
  await a.node.handle(
    ADVERT_PROTOCOL,
    async (stream: Stream) => {
      if (frame === 'hang') return; // accept, never answer
      if (raw) stream.send(frame);
      else await lpStream(stream).write(frame);
      await stream.close();
    },
    { force: true },
  );
}

async function provide(a: LoopbackAgent, service: string): Promise<void> {
  await collect(a.node.services.dht.provide(serviceProviderKey(service)));
}

describe('direct advertisement fetch', () => {
  const SERVICE = 'memory_sync';
  const nodes: Record<string, LoopbackAgent> = {};
  const ds: Discovery[] = [];
  /** hostile providers: what they serve directly, and whether they also have a valid DHT record */
  const hostile: Record<string, { dhtRecord: boolean; reason?: string }> = {
    forged: { dhtRecord: false, reason: 'signature' },
    oversized: { dhtRecord: false, reason: 'too-large' },
    expired: { dhtRecord: false, reason: 'expired' },
    garbage: { dhtRecord: false, reason: 'malformed' },
    otherKeyWithRecord: { dhtRecord: true, reason: 'key-mismatch' },
    hangWithRecord: { dhtRecord: true },
  };
  let dBob: Discovery;
  let dCarol: Discovery;
  let dEmpty: Discovery;

  beforeAll(async () => {
    const names = ['boot', 'bob', 'carol', 'empty', 'directOnly', ...Object.keys(hostile)];
    const started = await Promise.all(names.map(() => startLoopbackAgent()));
    names.forEach((n, i) => {
      nodes[n] = started[i] as LoopbackAgent;
    });
    const boot = nodes.boot as LoopbackAgent;
    for (const n of names.slice(1)) {
      const r = await bootstrapDialer((nodes[n] as LoopbackAgent).node, [boot.addr], {
        retry: { attempts: 3, baseDelayMs: 200 },
      });
      expect(r.connected).toEqual([boot.addr]);
    }
    await waitFor(
      () => Object.values(nodes).every((a) => routingTableSize(a.node) >= 3),
      30_000,
      'routing tables',
    );
    dBob = new Discovery(nodes.bob!.node, nodes.bob!.key);
    dCarol = new Discovery(nodes.carol!.node, nodes.carol!.key);
    dEmpty = new Discovery(nodes.empty!.node, nodes.empty!.key);
    ds.push(dBob, dCarol, dEmpty);
    await dBob.advertise([SERVICE], { name: 'bob', timeoutMs: 30_000 });

    // hostile providers with a valid DHT record advertise honestly first, then swap the handler
    const now = Date.now();
    for (const [name, h] of Object.entries(hostile)) {
      const a = nodes[name] as LoopbackAgent;
      if (h.dhtRecord) {
        const d = new Discovery(a.node, a.key);
        ds.push(d);
        await d.advertise([SERVICE], { name, timeoutMs: 30_000 });
      } else {
        await provide(a, SERVICE);
      }
      const own = createAdvertisement(a.key, { services: [SERVICE], name, now }).advert;
      const { signature, ...body } = structuredClone(own);
      switch (name) {
        case 'forged':
          await serveRaw(
            a,
            canonicalBytes({
              ...body,
              signature: (signature[0] === '0' ? '1' : '0') + signature.slice(1),
            } as never),
          );
          break;
        case 'oversized':
          await serveRaw(
            a,
            resign(a.key, { ...body, card: { ...body.card, description: 'x'.repeat(ADVERT_MAX_BYTES) } }),
          );
          break;
        case 'expired':
          await serveRaw(
            a,
            resign(a.key, { ...body, issuedAt: now - 7_200_000, expiresAt: now - 3_600_000 }),
          );
          break;
        case 'garbage':
          await serveRaw(a, new TextEncoder().encode('{"not":"an advert"'));
          break;
        case 'otherKeyWithRecord':
          // Bob's valid, signed advert, served by someone else
          await serveRaw(a, dBob.current!.bytes);
          break;
        case 'hangWithRecord':
          await serveRaw(a, 'hang');
          break;
      }
    }
    // an honest provider with no DHT record at all: only the direct fetch can resolve it
    const direct = nodes.directOnly as LoopbackAgent;
    await provide(direct, SERVICE);
    await serveRaw(direct, createAdvertisement(direct.key, { services: [SERVICE], name: 'direct' }).bytes);
  }, 120_000);

  afterAll(async () => {
    for (const d of ds) d.stop();
    await Promise.all(Object.values(nodes).map((a) => a.node.stop()));
  });

  it('fetches an honest advert straight from its provider, and null from one with nothing to serve', async () => {
    const carol = nodes.carol!.node;
    const bob = nodes.bob!;
    const v = await fetchAdvert(carol, bob.node.peerId, [], { timeoutMs: 10_000 });
    expect(Buffer.from(v!.bytes).equals(Buffer.from(dBob.current!.bytes))).toBe(true);
    expect(v!.advert.pubkey).toBe(bob.key.publicKeyHex);
    expect(await fetchAdvert(carol, nodes.empty!.node.peerId, [], { timeoutMs: 10_000 })).toBeNull();
  });

  it('refuses every hostile answer with the reason', async () => {
    const carol = nodes.carol!.node;
    for (const [name, h] of Object.entries(hostile)) {
      const peer = nodes[name]!.node.peerId;
      if (h.reason === undefined) {
        // the hanging provider: the fetch runs into its own timeout
        await expect(fetchAdvert(carol, peer, [], { timeoutMs: 300 }), name).rejects.toMatchObject({
          code: 'ERR_TIMEOUT',
        });
        continue;
      }
      await expect(fetchAdvert(carol, peer, [], { timeoutMs: 10_000 }), name).rejects.toMatchObject({
        code: 'ERR_INVALID_RECORD',
        details: { reason: h.reason },
      });
    }
  });

  it('property: whatever bytes a provider writes, the fetch gives null, a verified advert or a typed error', async () => {
    const carol = nodes.carol!.node;
    const provider = nodes.garbage!;
    const valid = createAdvertisement(provider.key, { services: [SERVICE], now: Date.now() }).bytes;
    const varint = (n: number) => {
      const out: number[] = [];
      for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
      out.push(n);
      return Uint8Array.of(...out);
    };
    const frames = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Uint8Array.of(...b.map((x) => x | 0x80))),
      fc
        .tuple(fc.nat(ADVERT_MAX_BYTES + 10), fc.uint8Array({ maxLength: 64 }))
        .map(([n, b]) => Buffer.concat([varint(n), b])),
      fc.nat(valid.length).map((cut) => Buffer.concat([varint(valid.length), valid.subarray(0, cut)])),
      fc.jsonValue().map((v) => {
        const body = new TextEncoder().encode(JSON.stringify(v) ?? 'null');
        return Buffer.concat([varint(body.length), body]);
      }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(frames, async (frame) => {
          await serveRaw(provider, frame, true);
          try {
            const v = await fetchAdvert(carol, provider.node.peerId, [], { timeoutMs: 5_000 });
            if (v !== null) expect(v.advert.onion).toBe(provider.key.onion);
          } catch (e) {
            expect(e, String(e)).toBeInstanceOf(MmogitError);
          }
        }),
        propertyParams('advert fetch bytes', { numRuns: 60 }),
      );
    } finally {
      await serveRaw(provider, new TextEncoder().encode('{"not":"an advert"'));
    }
  }, 120_000);

  it('discover yields only verified adverts, each once, falling back to the DHT record', async () => {
    const expected = [
      nodes.bob!.key.onion,
      nodes.directOnly!.key.onion,
      nodes.otherKeyWithRecord!.key.onion,
      nodes.hangWithRecord!.key.onion,
    ].sort();
    const t0 = performance.now();
    const found: VerifiedAdvertisement[] = await collect(dCarol.discover(SERVICE, { timeoutMs: 20_000 }));
    const elapsed = performance.now() - t0;
    expect(found.map((v) => v.advert.onion).sort()).toEqual(expected);
    // each advert is the key owner's own: the one served by the wrong node came from its DHT record
    const other = found.find((v) => v.advert.onion === nodes.otherKeyWithRecord!.key.onion)!;
    expect(other.advert.card.name).toBe('otherKeyWithRecord');
    // the hanging provider cost one hedge delay, not the fetch timeout
    expect(elapsed).toBeLessThan(ADVERT_HEDGE_MS + 8_000);

    // with a limit the search stops once enough providers are in hand, and resumes when hostile ones fall
    // through: still exactly the honest ones, each once
    const limited = await collect(dCarol.discover(SERVICE, { timeoutMs: 20_000, limit: expected.length }));
    expect(limited.map((v) => v.advert.onion).sort()).toEqual(expected);
    const one = await collect(dCarol.discover(SERVICE, { timeoutMs: 20_000, limit: 1 }));
    expect(one).toHaveLength(1);
    expect(expected).toContain(one[0]!.advert.onion);

    // DHT-only resolution (direct: false) cannot see the provider that has no record: the direct path was used
    const dhtOnly = await collect(dCarol.discover(SERVICE, { timeoutMs: 20_000, direct: false }));
    expect(dhtOnly.map((v) => v.advert.onion).sort()).toEqual(
      expected.filter((o) => o !== nodes.directOnly!.key.onion),
    );
    // and lookup() is still DHT-only
    expect(await dCarol.lookup(nodes.directOnly!.key.onion, { timeoutMs: 10_000 })).toBeNull();
  });

  it('stop() stops serving (peers fall back to the DHT record); advertise() serves again', async () => {
    const carol = nodes.carol!.node;
    const bob = nodes.bob!;
    dBob.stop();
    // a provider that no longer speaks the protocol: libp2p's refusal arrives typed, with its name kept
    await expect(fetchAdvert(carol, bob.node.peerId, [], { timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ERR_PEER_UNREACHABLE',
      details: { name: expect.any(String) },
    });
    const found = await collect(dCarol.discover(SERVICE, { timeoutMs: 20_000 }));
    expect(found.map((v) => v.advert.onion)).toContain(bob.key.onion);
    const again = await dBob.advertise([SERVICE], { timeoutMs: 30_000 });
    const v = await fetchAdvert(carol, bob.node.peerId, [], { timeoutMs: 10_000 });
    expect(v?.advert.issuedAt).toBe(again.advert.issuedAt);
  });
});
