import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { isOnionMultiaddr } from '../../src/transport/addr.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { channelFromStream } from '../../src/transport/stream-channel.js';
import { startTestTor } from '../helpers/tor.js';

const ECHO = '/mmogit-test/echo/1.0.0';
const VPORT = 4001;

let tmp: string;
let torA: TorHandle;
let torB: TorHandle;
const nodes: AgentNode[] = [];

async function agent(tor: TorHandle) {
  const key = AgentKey.random();
  const node = await createAgentNode({
    key,
    socks: { host: tor.socksHost, port: tor.socksPort },
    onion: { serviceId: key.serviceId, virtualPort: VPORT },
    torDialAttempts: 6,
  });
  nodes.push(node);
  await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
  return { key, node };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-transport-tor-'));
  [torA, torB] = await Promise.all([
    startTestTor(tmp, { name: 'a', restart: false }),
    startTestTor(tmp, { name: 'b', restart: false }),
  ]);
}, 240_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
  await Promise.all([torA?.stop(), torB?.stop()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

describe('agent nodes over the private Tor network', () => {
  it('dial by onion, echo over a protocol stream, key-bound identities, tor only', async () => {
    const a = await agent(torA);
    const b = await agent(torB);
    const seen: Array<{ onion: string; transport: string }> = [];
    await b.node.handle(ECHO, async (stream, remote) => {
      seen.push({ onion: remote.onion, transport: remote.transport });
      for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain();
      await stream.close();
    });

    const stream = await a.node.dialProtocol(b.key.onion, ECHO, { timeoutMs: 90_000 });
    const ch = channelFromStream(stream);
    const payload = randomBytes(256 * 1024);
    await ch.write(payload);
    const back = await ch.readExactly(payload.length, { signal: AbortSignal.timeout(60_000) });
    expect(Buffer.from(back).equals(payload)).toBe(true);
    await ch.close();

    // B learned A's identity from the noise handshake: it is the onion A's key derives
    expect(seen).toEqual([{ onion: a.key.onion, transport: 'tor' }]);
    const aConns = a.node.connections();
    expect(aConns.length).toBeGreaterThan(0);
    for (const c of aConns) {
      expect(c.transport).toBe('tor');
      expect(isOnionMultiaddr(multiaddr(c.remoteAddr))).toBe(true);
      expect(c.onion).toBe(b.key.onion);
    }
    for (const c of b.node.connections()) expect(c.transport).toBe('tor');
    // identify told A only B's onion address
    const bInfo = await a.node.libp2p.peerStore.get(b.node.peerId);
    expect(bInfo.addresses.length).toBeGreaterThan(0);
    for (const addr of bInfo.addresses) expect(isOnionMultiaddr(addr.multiaddr)).toBe(true);

    // a direct dial to B's real local port is refused by policy, and no new connection appears on B
    const before = b.node.connections().length;
    await expect(
      a.node.dialProtocol(`/ip4/127.0.0.1/tcp/${b.node.listenPort}/p2p/${b.node.peerId}`, ECHO),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_POLICY' });
    expect(b.node.connections().length).toBe(before);

    // a second stream reuses the same connection (one circuit per peer pair)
    const s2 = await a.node.dialProtocol(b.key.onion, ECHO, { timeoutMs: 60_000 });
    expect(a.node.libp2p.getConnections(b.node.peerId)).toHaveLength(1);
    s2.abort(new Error('done'));
  }, 180_000);

  it('an onion served by a different key is refused: the PeerId ↔ onion binding is checked by noise', async () => {
    const a = await agent(torA);
    const c = await agent(torB);
    await c.node.handle(ECHO, async (stream) => stream.close());
    // publish impostor X's onion, forwarding to C's node (which holds a different key)
    const impostor = AgentKey.random();
    await publishOnion(torB, impostor, {
      targetPort: c.node.listenPort,
      virtualPort: VPORT,
      timeoutMs: 60_000,
    });
    const err = await a.node.dialProtocol(impostor.onion, ECHO, { timeoutMs: 60_000 }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_HANDSHAKE' });
    expect(a.node.libp2p.getConnections(c.node.peerId)).toHaveLength(0);
    expect(a.node.connections()).toEqual([]);
  }, 180_000);
});
