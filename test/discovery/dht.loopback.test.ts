// The DHT logic on real libp2p nodes over loopback TCP (no tor): publish, discover, lookup, forged and
// replayed records, ageing out, and a stock kad-dht node reading our records.
import { type KadDHTInit, passthroughMapper } from '@libp2p/kad-dht';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADVERT_MAX_BYTES,
  advertRecordKey,
  advertSelector,
  advertValidator,
  bootstrapDialer,
  createAdvertisement,
  DHT_PROTOCOL,
  Discovery,
  serviceProviderKey,
  verifyAdvertisement,
} from '../../src/discovery/index.js';
import { AgentKey, canonicalBytes } from '../../src/identity/index.js';
import { type LoopbackAgent, routingTableSize, startLoopbackAgent } from '../support/loopback.js';
import { collect, FORGER_DHT, resign, waitFor } from './_helpers.js';

const REPUBLISH_MS = 1_500;

/** A stock kad-dht configured only with the protocol id and our validator/selector (not dhtServiceOptions). */
const stockDht: KadDHTInit = {
  protocol: DHT_PROTOCOL,
  clientMode: false,
  peerInfoMapper: passthroughMapper,
  validators: { mmogit: advertValidator },
  selectors: { mmogit: advertSelector },
};

describe('discovery over a loopback DHT', () => {
  let boot: LoopbackAgent;
  let b: LoopbackAgent;
  let c: LoopbackAgent;
  let d: LoopbackAgent;
  let e: LoopbackAgent;
  let m: LoopbackAgent;
  let stock: LoopbackAgent;
  let all: LoopbackAgent[];
  let dB: Discovery;
  let dC: Discovery;
  let dD: Discovery;

  beforeAll(async () => {
    boot = await startLoopbackAgent();
    [b, c, d, e] = (await Promise.all([1, 2, 3, 4].map(() => startLoopbackAgent()))) as [
      LoopbackAgent,
      LoopbackAgent,
      LoopbackAgent,
      LoopbackAgent,
    ];
    m = await startLoopbackAgent(AgentKey.random(), {
      rawDht: { ...FORGER_DHT, peerInfoMapper: passthroughMapper },
    });
    stock = await startLoopbackAgent(AgentKey.random(), { rawDht: stockDht });
    all = [boot, b, c, d, e, m, stock] as LoopbackAgent[];
    for (const a of all.slice(1)) {
      const r = await bootstrapDialer(a.node, [boot.addr], { retry: { attempts: 3, baseDelayMs: 200 } });
      expect(r.connected).toEqual([boot.addr]);
    }
    await waitFor(() => all.every((a) => routingTableSize(a.node) >= 3), 30_000, 'routing tables');
    dB = new Discovery(b.node, b.key, { republishMs: REPUBLISH_MS });
    dC = new Discovery(c.node, c.key);
    dD = new Discovery(d.node, d.key);
  });

  afterAll(async () => {
    for (const x of [dB, dC, dD]) x?.stop();
    await Promise.all((all ?? []).map((a) => a.node.stop()));
  });

  it('B advertises memory_sync, C discovers and looks up B', async () => {
    const ad = await dB.advertise(['memory_sync'], { name: 'bob', timeoutMs: 30_000 });
    expect(ad.advert.onion).toBe(b.key.onion);
    const found = await collect(dC.discover('memory_sync', { timeoutMs: 20_000 }));
    expect(found.map((v) => v.advert.onion)).toEqual([b.key.onion]);
    expect(found[0]?.advert.card.name).toBe('bob');
    const looked = await dC.lookup(b.key.onion);
    expect(looked?.advert.pubkey).toBe(b.key.publicKeyHex);
    // by hex key too
    expect((await dC.lookup(b.key.publicKeyHex))?.advert.onion).toBe(b.key.onion);
    // unknown agent: null, not an error
    expect(await dC.lookup(AgentKey.random().onion, { timeoutMs: 10_000 })).toBeNull();
  });

  it('a stock kad-dht node with the same protocol id and validator reads the record', async () => {
    const key = advertRecordKey(b.key.publicKey);
    const values: Uint8Array[] = [];
    for await (const ev of stock.node.services.dht.get(key)) if (ev.name === 'VALUE') values.push(ev.value);
    expect(values.length).toBeGreaterThan(0);
    const v = verifyAdvertisement(values.at(-1) as Uint8Array);
    expect(v.advert.onion).toBe(b.key.onion);
    // and finds B as a provider of memory_sync with the stock API
    const providers: string[] = [];
    for await (const ev of stock.node.services.dht.findProviders(serviceProviderKey('memory_sync'))) {
      if (ev.name === 'PROVIDER') providers.push(...ev.providers.map((p) => p.id.toString()));
    }
    expect(providers).toContain(b.node.peerId.toString());
  });

  it('forged adverts are rejected by every node and never returned', async () => {
    const now = Date.now();
    const good = createAdvertisement(m.key, { services: ['memory_sync'], now }).advert;
    const { signature, ...body } = structuredClone(good);
    const forgeries: Record<string, Uint8Array> = {
      'tampered signature': canonicalBytes({
        ...body,
        signature: (signature.startsWith('0') ? '1' : '0') + signature.slice(1),
      } as never),
      'onion of another key': resign(m.key, { ...structuredClone(body), onion: b.key.onion }),
      expired: resign(m.key, {
        ...structuredClone(body),
        issuedAt: now - 7_200_000,
        expiresAt: now - 3_600_000,
      }),
      'dated in the future': resign(m.key, {
        ...structuredClone(body),
        issuedAt: now + 3_600_000,
        expiresAt: now + 7_200_000,
      }),
      oversized: resign(m.key, {
        ...structuredClone(body),
        card: { ...structuredClone(body.card), description: 'x'.repeat(ADVERT_MAX_BYTES) },
      }),
    };
    const key = advertRecordKey(m.key.publicKey);
    // M also provides memory_sync, so discover will try to resolve M
    await collect(m.node.services.dht.provide(serviceProviderKey('memory_sync')));
    for (const [kind, bytes] of Object.entries(forgeries)) {
      expect(() => verifyAdvertisement(bytes), kind).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_RECORD' }),
      );
      let acks = 0;
      let refusals = 0;
      for await (const ev of m.node.services.dht.put(key, bytes)) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acks++;
        if (ev.name === 'QUERY_ERROR') refusals++;
      }
      expect(acks, `${kind}: nodes that stored it`).toBe(0);
      expect(refusals, `${kind}: nodes that refused it`).toBeGreaterThan(0);
      // No honest node holds it: M's permissive get sees no copy from anyone but itself.
      for await (const ev of m.node.services.dht.get(key)) {
        if (ev.name === 'PEER_RESPONSE') expect(ev.record, `${kind} served by ${ev.from}`).toBeFalsy();
      }
      const found = await collect(dC.discover('memory_sync', { timeoutMs: 20_000 }));
      expect(
        found.map((v) => v.advert.onion),
        kind,
      ).toEqual([b.key.onion]);
      expect(await dC.lookup(m.key.onion, { timeoutMs: 10_000 }), kind).toBeNull();
    }
    // A forged record under another agent's key (B's) is refused too, and B's record still wins.
    let acks = 0;
    for await (const ev of m.node.services.dht.put(
      advertRecordKey(b.key.publicKey),
      forgeries['tampered signature'] as Uint8Array,
    )) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acks++;
    }
    expect(acks).toBe(0);
    expect((await dC.lookup(b.key.onion))?.advert.onion).toBe(b.key.onion);
  });

  it('a replayed older record does not hide the newer one for long', async () => {
    const older = dB.current;
    expect(older).toBeDefined();
    await waitFor(
      () => (dB.current?.advert.issuedAt ?? 0) > (older?.advert.issuedAt ?? 0),
      10_000,
      'republish',
    );
    const newer = dB.current!;
    // The replay is a valid signed record: nodes store it (kad-dht runs no selector on PUT)…
    let acks = 0;
    for await (const ev of m.node.services.dht.put(advertRecordKey(b.key.publicKey), older!.bytes)) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acks++;
    }
    expect(acks).toBeGreaterThan(0);
    // …but the selector prefers the newer one wherever both meet…
    expect(advertSelector(advertRecordKey(b.key.publicKey), [older!.bytes, newer.bytes])).toBe(1);
    // …and B's periodic re-publish restores a newer record everywhere within ~one interval.
    const started = Date.now();
    await waitFor(
      async () => ((await dC.lookup(b.key.onion))?.advert.issuedAt ?? 0) > older!.advert.issuedAt,
      4 * REPUBLISH_MS,
      'newer record',
    );
    expect(Date.now() - started).toBeLessThan(4 * REPUBLISH_MS);
  });

  it('an agent that stops advertising ages out', async () => {
    // long enough that the advert is still fresh when the first discover ends on a loaded machine (3 s once
    // expired before it: CI at load 26)
    const ttlMs = 15_000;
    const ad = await dD.advertise(['ephemeral'], { ttlMs, timeoutMs: 30_000 });
    dD.stop();
    const before = await collect(dC.discover('ephemeral', { timeoutMs: 20_000 }));
    expect(before.map((v) => v.advert.onion)).toEqual([d.key.onion]);
    const wait = ad.advert.expiresAt - Date.now() + 200;
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    expect(await collect(dC.discover('ephemeral', { timeoutMs: 20_000 }))).toEqual([]);
    expect(await dC.lookup(d.key.onion)).toBeNull();
    // and a node's own validator now refuses the expired copy: E cannot re-PUT it anywhere
    let acks = 0;
    for await (const ev of m.node.services.dht.put(advertRecordKey(d.key.publicKey), ad.bytes)) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acks++;
    }
    expect(acks).toBe(0);
  }, 150_000);

  it('an advert published before the routing table filled is published again soon, not at the next re-publish', async () => {
    // L advertises while it knows no peer (an agent that advertises right after start): the publication reaches
    // nobody. The regular re-publish is 10 minutes away; the sparse retry must make L findable once it joins.
    const l = await startLoopbackAgent();
    const reports: { recordPeers: number }[] = [];
    const dL = new Discovery(l.node, l.key, {
      onPublish: (r) => {
        if ('recordPeers' in r) reports.push({ recordPeers: r.recordPeers });
      },
    });
    try {
      await dL.advertise(['late_joiner'], { timeoutMs: 30_000 });
      expect(reports[0]?.recordPeers).toBe(0);
      const r = await bootstrapDialer(l.node, [boot.addr], { retry: { attempts: 3, baseDelayMs: 200 } });
      expect(r.connected).toEqual([boot.addr]);
      await waitFor(
        () => reports.some((x) => x.recordPeers > 0),
        60_000,
        'a publication that reached a peer',
      );
      expect((await dC.lookup(l.key.onion, { timeoutMs: 20_000 }))?.advert.onion).toBe(l.key.onion);
      const found = await collect(dC.discover('late_joiner', { timeoutMs: 20_000 }));
      expect(found.map((v) => v.advert.onion)).toEqual([l.key.onion]);
      // once it reached peers it stops retrying: no further publication within the next retry delays
      const n = reports.length;
      await new Promise((res) => setTimeout(res, 5_000));
      expect(reports.length).toBe(n);
    } finally {
      dL.stop();
      await l.node.stop();
    }
  }, 120_000);
});
