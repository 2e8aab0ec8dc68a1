import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BootstrapProgress,
  bootstrapAddrsFromNetwork,
  bootstrapDialer,
  isDiscoveryNode,
} from '../../src/discovery/index.js';
import { AgentKey } from '../../src/identity/index.js';
import { type LoopbackAgent, routingTableSize, startLoopbackAgent } from '../support/loopback.js';

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('bootstrapDialer', () => {
  let a: LoopbackAgent;
  let b: LoopbackAgent;
  beforeAll(async () => {
    [a, b] = await Promise.all([startLoopbackAgent(), startLoopbackAgent()]);
  });
  afterAll(async () => {
    await Promise.all([a?.node.stop(), b?.node.stop()]);
  });

  it('connects to live peers, retries and reports dead ones, skips itself, fills the routing table', async () => {
    // a peer that is not running (dialing a known PeerId would reuse its live connection)
    const ghost = peerIdFromPublicKey(publicKeyFromRaw(AgentKey.random().publicKey)).toString();
    const dead = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${ghost}`;
    const events: BootstrapProgress[] = [];
    const r = await bootstrapDialer(b.node, [a.addr, dead, b.addr], {
      retry: { attempts: 3, baseDelayMs: 50 },
      onProgress: (e) => events.push(e),
    });
    expect(r.connected).toEqual([a.addr]);
    expect(r.failed).toEqual([dead]);
    const forDead = events.filter((e) => e.addr === dead).map((e) => e.type);
    expect(forDead).toEqual(['dial', 'retry', 'dial', 'retry', 'dial', 'failed']);
    expect(events.some((e) => e.addr === b.addr)).toBe(false);
    expect(routingTableSize(b.node)).toBeGreaterThan(0);
    expect(isDiscoveryNode(b.node)).toBe(true);
  });

  it('rejects unparsable multiaddrs and honours the abort signal', async () => {
    await expect(bootstrapDialer(b.node, ['not a multiaddr'])).rejects.toMatchObject({
      code: 'ERR_INVALID_MULTIADDR',
    });
    const dead = `/ip4/127.0.0.1/tcp/${await closedPort()}`;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t = Date.now();
    await expect(
      bootstrapDialer(b.node, [dead], { retry: { attempts: 51, baseDelayMs: 1000 }, signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(Date.now() - t).toBeLessThan(5_000);
  });
});

describe('bootstrapAddrsFromNetwork', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mmogit-net-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads bootstrapPeers from network.json', async () => {
    const addr = `/onion3/${'a'.repeat(56)}:4001/p2p/12D3KooWtest`;
    await writeFile(join(dir, 'network.json'), JSON.stringify({ bootstrapPeers: [addr, addr] }));
    expect(await bootstrapAddrsFromNetwork(dir)).toEqual([addr]);
  });

  it('fails with ERR_NETWORK_CONFIG when missing or empty', async () => {
    await writeFile(join(dir, 'network.json'), JSON.stringify({ authorities: [] }));
    await expect(bootstrapAddrsFromNetwork(dir)).rejects.toMatchObject({ code: 'ERR_NETWORK_CONFIG' });
    await expect(bootstrapAddrsFromNetwork(join(dir, 'nope'))).rejects.toMatchObject({
      code: 'ERR_NETWORK_CONFIG',
    });
  });
});
