// Discovery on the private Tor network: 5 agents (onion3 transport over SOCKS, tor-only), bootstrap by
// onion multiaddr, B advertises memory_sync and C discovers it, forged adverts are refused by every node,
// and an agent that stops advertising ages out.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KadDHTInit, kadDHT } from '@libp2p/kad-dht';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADVERT_MAX_BYTES,
  advertRecordKey,
  bootstrapDialer,
  createAdvertisement,
  Discovery,
  type DiscoveryNode,
  dhtServiceOptions,
  serviceProviderKey,
} from '../../src/discovery/index.js';
import { AgentKey, canonicalBytes } from '../../src/identity/index.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { onionMultiaddr } from '../../src/transport/addr.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { startTestTor } from '../helpers/tor.js';
import { collect, FORGER_DHT, resign } from './_helpers.js';

const VPORT = 4001;
interface TorAgent {
  key: AgentKey;
  node: AgentNode;
  lib: DiscoveryNode;
  addr: string;
}

let tmp: string;
const tors: TorHandle[] = [];
const agents: TorAgent[] = [];
const discoveries: Discovery[] = [];

async function agent(tor: TorHandle, dht: KadDHTInit = dhtServiceOptions()): Promise<TorAgent> {
  const key = AgentKey.random();
  const node = await createAgentNode({
    key,
    socks: { host: tor.socksHost, port: tor.socksPort },
    onion: { serviceId: key.serviceId, virtualPort: VPORT },
    torDialAttempts: 6,
    services: { dht: kadDHT(dht) },
  });
  await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
  const a = {
    key,
    node,
    lib: node.libp2p as unknown as DiscoveryNode,
    addr: onionMultiaddr(key.onion, VPORT, node.peerId.toString()).toString(),
  };
  agents.push(a);
  return a;
}

let a: TorAgent;
let b: TorAgent;
let c: TorAgent;
let d: TorAgent;
let m: TorAgent;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-discovery-tor-'));
  tors.push(
    ...(await Promise.all(['t1', 't2', 't3'].map((name) => startTestTor(tmp, { name, restart: false })))),
  );
  [a, b, c, d] = (await Promise.all([0, 1, 2, 0].map((i) => agent(tors[i] as TorHandle)))) as [
    TorAgent,
    TorAgent,
    TorAgent,
    TorAgent,
  ];
  m = await agent(tors[1] as TorHandle, FORGER_DHT);
  // everyone joins through A's onion multiaddr (the stock bootstrap module would refuse it)
  await Promise.all(
    [b, c, d, m].map(async (x) => {
      const r = await bootstrapDialer(x.lib, [a.addr], { retry: { attempts: 7 } });
      expect(r.connected).toEqual([a.addr]);
    }),
  );
}, 300_000);

afterAll(async () => {
  for (const x of discoveries) x.stop();
  await Promise.all(agents.map((x) => x.node.stop().catch(() => {})));
  await Promise.all(tors.map((t) => t.stop()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

describe('discovery on the private Tor network', () => {
  it('B advertises memory_sync; C discovers B through onion-only peers', async () => {
    const dB = new Discovery(b.lib, b.key);
    const dC = new Discovery(c.lib, c.key);
    discoveries.push(dB, dC);
    const ad = await dB.advertise(['memory_sync'], { name: 'bob', timeoutMs: 120_000 });
    // the advert carries the onion multiaddr the node announces
    expect(ad.advert.addrs).toEqual([`/onion3/${b.key.serviceId}:${VPORT}`]);
    const t0 = Date.now();
    const found = await collect(dC.discover('memory_sync', { timeoutMs: 90_000, limit: 1 }));
    expect(found.map((v) => v.advert.onion)).toEqual([b.key.onion]);
    expect(Date.now() - t0).toBeLessThan(90_000);
    expect((await dC.lookup(b.key.onion, { timeoutMs: 90_000 }))?.advert.card.name).toBe('bob');
  }, 240_000);

  it('forged adverts are refused by every node and never returned', async () => {
    const dC = new Discovery(c.lib, c.key);
    discoveries.push(dC);
    const now = Date.now();
    const { signature, ...body } = createAdvertisement(m.key, { services: ['memory_sync'], now }).advert;
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
      oversized: resign(m.key, {
        ...structuredClone(body),
        card: { ...structuredClone(body.card), description: 'x'.repeat(ADVERT_MAX_BYTES) },
      }),
    };
    for await (const _ of m.lib.services.dht.provide(serviceProviderKey('memory_sync'))) {
      // M claims memory_sync, so discover tries to resolve it
    }
    const key = advertRecordKey(m.key.publicKey);
    for (const [kind, bytes] of Object.entries(forgeries)) {
      let acks = 0;
      let refusals = 0;
      for await (const ev of m.lib.services.dht.put(key, bytes)) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') acks++;
        if (ev.name === 'QUERY_ERROR') refusals++;
      }
      expect(acks, `${kind}: stored by`).toBe(0);
      expect(refusals, `${kind}: refused by`).toBeGreaterThan(0);
      for await (const ev of m.lib.services.dht.get(key)) {
        if (ev.name === 'PEER_RESPONSE') expect(ev.record, `${kind} served by ${ev.from}`).toBeFalsy();
      }
    }
    const found = await collect(dC.discover('memory_sync', { timeoutMs: 60_000 }));
    expect(found.map((v) => v.advert.onion)).toEqual([b.key.onion]);
    expect(await dC.lookup(m.key.onion, { timeoutMs: 60_000 })).toBeNull();
  }, 240_000);

  it('an agent that stops advertising ages out', async () => {
    const dD = new Discovery(d.lib, d.key);
    const dC = new Discovery(c.lib, c.key);
    discoveries.push(dD, dC);
    const ad = await dD.advertise(['ephemeral'], { ttlMs: 20_000, timeoutMs: 120_000 });
    dD.stop();
    const before = await collect(dC.discover('ephemeral', { timeoutMs: 60_000, limit: 1 }));
    expect(before.map((v) => v.advert.onion)).toEqual([d.key.onion]);
    await new Promise((r) => setTimeout(r, Math.max(0, ad.advert.expiresAt - Date.now() + 500)));
    expect(await collect(dC.discover('ephemeral', { timeoutMs: 60_000 }))).toEqual([]);
    expect(await dC.lookup(d.key.onion, { timeoutMs: 60_000 })).toBeNull();
  }, 240_000);
});
