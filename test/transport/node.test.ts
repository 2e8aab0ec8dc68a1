import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { onionOfMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import type { DowngradeEvent } from '../../src/transport/hybrid.js';
import { type AgentNode, type AgentNodeOptions, createAgentNode } from '../../src/transport/node.js';
import { channelFromStream } from '../../src/transport/stream-channel.js';

const ECHO = '/mmogit-test/echo/1.0.0';
const nodes: AgentNode[] = [];
const servers: net.Server[] = [];

async function start(opts: Partial<AgentNodeOptions> & { policy: AgentNodeOptions['policy'] }) {
  const key = AgentKey.random();
  const node = await createAgentNode({ key, ...opts });
  nodes.push(node);
  return { key, node };
}

/** Echoes every stream back (libp2p 3 streams are async-iterable; send() returns false when we must drain). */
async function echo(node: AgentNode) {
  const seen: Array<{ onion: string; transport: string; publicKey: Uint8Array }> = [];
  await node.handle(ECHO, async (stream, remote) => {
    seen.push(remote);
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain();
    }
    await stream.close();
  });
  return seen;
}

/** A plain TCP server that counts connection attempts: proof that no byte went to it directly. */
async function countingServer(): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, count: () => n };
}

const directAddr = (node: AgentNode) =>
  `/ip4/127.0.0.1/tcp/${node.directPort ?? node.listenPort}/p2p/${node.peerId.toString()}`;

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('agent node on loopback (direct-only)', () => {
  it('PeerId is the identity key, and a protocol stream echoes big payloads through channelFromStream', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = await start({ policy: 'direct-only' });
    expect(Buffer.from(a.node.peerId.publicKey!.raw).equals(Buffer.from(a.key.publicKey))).toBe(true);
    const seen = await echo(b.node);

    const stream = await a.node.dialProtocol(directAddr(b.node), ECHO, { timeoutMs: 10_000 });
    const ch = channelFromStream(stream);
    const payload = randomBytes(6 * 1024 * 1024);
    const [, back] = await Promise.all([
      (async () => {
        for (let off = 0; off < payload.length; off += 256 * 1024) {
          await ch.write(payload.subarray(off, off + 256 * 1024));
        }
        await ch.close();
      })(),
      ch.readExactly(payload.length),
    ]);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(payload).digest('hex'),
    );
    // the echo closed its side: a further read reports a clean close
    await expect(ch.readExactly(1)).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });

    expect(seen).toHaveLength(1);
    expect(seen[0]?.onion).toBe(a.key.onion);
    expect(seen[0]?.transport).toBe('direct');
    const conns = a.node.connections();
    expect(conns.map((c) => [c.onion, c.transport, c.direction])).toEqual([
      [b.key.onion, 'direct', 'outbound'],
    ]);
  });

  it('a peer policy set later closes our open connections to that peer on a route it no longer allows', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = await start({ policy: 'direct-only' });
    const c = await start({ policy: 'direct-only' });
    await echo(b.node);
    await echo(c.node);
    await a.node.dialProtocol(directAddr(b.node), ECHO, { timeoutMs: 10_000 });
    await a.node.dialProtocol(directAddr(c.node), ECHO, { timeoutMs: 10_000 });
    const outbound = () =>
      a.node
        .connections()
        .filter((x) => x.direction === 'outbound')
        .map((x) => x.onion)
        .sort();
    expect(outbound()).toEqual([b.key.onion, c.key.onion].sort());
    // b is put on tor only: the direct connection opened before must not stay in use for it; c is untouched
    a.node.hybrid.setPeerPolicy(b.key.onion, 'tor-only');
    // at once, not after a graceful close: libp2p's dialer reuses any connection whose status is `open`, and a
    // closing one (muxer closing, socket still `open`) made the next send to b fail instead of taking a new route
    expect(
      a.node.libp2p
        .getConnections(b.node.peerId)
        .filter((x) => x.status === 'open')
        .map((x) => x.remoteAddr.toString()),
      'an open connection to b right after the change',
    ).toEqual([]);
    for (let i = 0; i < 100 && outbound().includes(b.key.onion); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(outbound()).toEqual([c.key.onion]);
    // and a new direct dial of b is refused by the gate
    await expect(a.node.dialProtocol(directAddr(b.node), ECHO, { timeoutMs: 10_000 })).rejects.toThrow();
  });

  it('a connection that cannot open a stream is aborted, so the next dial opens a new one', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = await start({ policy: 'direct-only' });
    await echo(b.node);
    // a forwarder to b that can freeze the connections it already carries (open, but silent: a peer gone
    // behind tor without a close) while new ones go through
    const frozen = new Set<net.Socket>();
    const carried: net.Socket[] = [];
    const fwd = net.createServer((client) => {
      const up = net.connect(b.node.directPort ?? b.node.listenPort, '127.0.0.1');
      carried.push(client);
      const pipe = (from: net.Socket, to: net.Socket) =>
        from.on('data', (d) => {
          if (!frozen.has(client)) to.write(d);
        });
      pipe(client, up);
      pipe(up, client);
      const end = () => {
        client.destroy();
        up.destroy();
      };
      for (const s of [client, up]) s.on('error', end).on('close', end);
    });
    servers.push(fwd);
    await new Promise<void>((r) => fwd.listen(0, '127.0.0.1', r));
    const via = `/ip4/127.0.0.1/tcp/${(fwd.address() as net.AddressInfo).port}/p2p/${b.node.peerId}`;
    const ping = async () => {
      const ch = channelFromStream(await a.node.dialProtocol(via, ECHO, { timeoutMs: 3_000 }));
      await ch.write(Buffer.from('ping'));
      return (await ch.readExactly(4)).toString();
    };
    expect(await ping()).toBe('ping');
    for (const c of carried) frozen.add(c);
    await expect(ping()).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    // the frozen connection is gone, not handed to the next dial
    expect(
      a.node.libp2p
        .getConnections(b.node.peerId)
        .filter((c) => c.status === 'open')
        .map((c) => c.remoteAddr.toString()),
    ).toEqual([]);
    expect(await ping()).toBe('ping');
    expect(carried).toHaveLength(2);
  });

  it('channelFromStream applies backpressure to a slow reader and loses nothing', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = await start({ policy: 'direct-only' });
    await echo(b.node);
    const ch = channelFromStream(await a.node.dialProtocol(directAddr(b.node), ECHO, { timeoutMs: 10_000 }));
    const payload = randomBytes(12 * 1024 * 1024);
    const writing = (async () => {
      await ch.write(payload);
      await ch.close();
    })();
    await new Promise((r) => setTimeout(r, 300)); // let the buffer pass the high-water mark: the stream pauses
    const hash = createHash('sha256');
    for (let got = 0; got < payload.length; got += 64 * 1024) hash.update(await ch.readExactly(64 * 1024));
    await writing;
    expect(hash.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    await expect(ch.readExactly(1)).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });

  it('a protocol the peer does not speak is ERR_NOT_FOUND', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = await start({ policy: 'direct-only' });
    await expect(
      a.node.dialProtocol(directAddr(b.node), '/mmogit-test/nope/1.0.0', { timeoutMs: 10_000 }),
    ).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('direct-only refuses to dial an onion', async () => {
    const a = await start({ policy: 'direct-only' });
    const b = AgentKey.random();
    await expect(a.node.dialProtocol(b.onion, ECHO)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_POLICY' });
  });
});

describe('tor-only never dials direct', () => {
  it('announces only its onion and has no TCP transport at all', async () => {
    const a = await start({ policy: 'tor-only', onion: undefined });
    const addrs = a.node.addresses();
    expect(addrs.length).toBeGreaterThan(0);
    for (const ma of addrs) expect(onionOfMultiaddr(ma)?.serviceId).toBe(a.key.serviceId);
    expect(a.node.directPort).toBeUndefined();
    expect(a.node.listenPort).toBeGreaterThan(0);
  });

  it('refuses a direct multiaddr with ERR_TRANSPORT_POLICY and sends nothing to it, by any path', async () => {
    const a = await start({ policy: 'tor-only', torDialAttempts: 1 });
    const target = await countingServer();
    const peer = AgentKey.random();
    const pid = peerIdFromOnion(peer.onion);
    const ma = `/ip4/127.0.0.1/tcp/${target.port}/p2p/${pid}`;

    await expect(a.node.dialProtocol(ma, ECHO)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_POLICY' });
    await expect(a.node.dialProtocol(`/ip4/127.0.0.1/tcp/${target.port}`, ECHO)).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_POLICY',
    });
    // bypassing our API: libp2p itself cannot dial it (no TCP transport, gater refuses)
    await expect(a.node.libp2p.dial(multiaddr(ma))).rejects.toThrow();
    // dialling by PeerId when the peer store only knows a direct address: tor only (no SocksPort → fails)
    await a.node.libp2p.peerStore.merge(pid, {
      multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${target.port}`)],
    });
    const err = await a.node.dialProtocol(pid.toString(), ECHO, { timeoutMs: 10_000 }).catch((e) => e);
    expect(hasCode(err, 'ERR_SOCKS') || hasCode(err, 'ERR_PEER_UNREACHABLE')).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(target.count()).toBe(0);
    expect(a.node.connections()).toEqual([]);
  });

  it('a per-peer tor-only policy refuses that peer connecting in directly', async () => {
    const bKey = AgentKey.random();
    const a = await start({ policy: 'direct-only', peerPolicies: { [bKey.onion]: 'tor-only' } });
    const seen = await echo(a.node);
    const b = await createAgentNode({ key: bKey, policy: 'direct-only' });
    nodes.push(b);
    const err = await b.dialProtocol(directAddr(a.node), ECHO, { timeoutMs: 10_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(seen).toEqual([]);
    expect(a.node.connections()).toEqual([]);
  });
});

describe('tor-then-direct', () => {
  it('tries tor first and announces the downgrade before any direct connection', async () => {
    const deadSocks = await countingServer(); // a SOCKS port that drops us: the tor route fails for real
    const order: string[] = [];
    const downgrades: DowngradeEvent[] = [];
    const b = await start({ policy: 'direct-only' });
    const seen = await echo(b.node);
    const a = await start({
      policy: 'tor-then-direct',
      socks: { host: '127.0.0.1', port: deadSocks.port },
      torDialAttempts: 1,
      onDowngrade: (e) => downgrades.push(e),
    });
    a.node.on('downgrade', () => order.push('downgrade'));
    a.node.on('peer:connect', (c) => order.push(`connect:${c.transport}`));
    await a.node.libp2p.peerStore.merge(b.node.peerId, {
      multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${b.node.listenPort}`)],
    });

    const stream = await a.node.dialProtocol(b.node.peerId.toString(), ECHO, { timeoutMs: 20_000 });
    const ch = channelFromStream(stream);
    await ch.write(Uint8Array.of(1, 2, 3));
    expect(Array.from(await ch.readExactly(3))).toEqual([1, 2, 3]);

    expect(deadSocks.count()).toBeGreaterThan(0); // tor was really tried first
    expect(order).toEqual(['downgrade', 'connect:direct']);
    expect(downgrades).toHaveLength(1);
    expect(downgrades[0]).toMatchObject({ peer: b.node.peerId.toString(), from: 'tor', to: 'direct' });
    expect(seen[0]?.transport).toBe('direct');
  });

  it('the gate refuses libp2p-internal direct dials that were not announced', async () => {
    const b = await start({ policy: 'direct-only' });
    const a = await start({ policy: 'tor-then-direct' });
    await expect(a.node.libp2p.dial(multiaddr(directAddr(b.node)))).rejects.toThrow();
    expect(a.node.connections()).toEqual([]);
  });
});
