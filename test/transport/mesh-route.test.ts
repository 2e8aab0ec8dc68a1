// The `mesh` route of HybridTransport on loopback: an agent node whose peer policy is mesh-only dials the peer's
// onion through three in-process mesh relays. The exit's "tor" is the one test double here: its onion connector
// opens the peer node's onion listener (what tor's onion service forwards to) on 127.0.0.1; everything else is
// real (relays, circuits, libp2p noise and yamux on top of the mesh stream).
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { Mesh } from '../../src/mesh/mesh.js';
import type { DowngradeEvent } from '../../src/transport/hybrid.js';
import { type AgentNode, type AgentNodeOptions, createAgentNode } from '../../src/transport/node.js';
import { startRelays } from '../mesh/_helpers.js';

const ECHO = '/mmogit-test/echo/1.0.0';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(opts: Partial<AgentNodeOptions> = {}): Promise<{ key: AgentKey; node: AgentNode }> {
  const key = AgentKey.random();
  const n = await createAgentNode({ key, policy: 'tor-only', ...opts });
  cleanups.push(() => n.stop());
  return { key, node: n };
}

/** Echoes every stream back, recording who connected and over which route (as the receiver sees it). */
async function echo(n: AgentNode): Promise<{ onion: string; transport: string }[]> {
  const seen: { onion: string; transport: string }[] = [];
  await n.handle(ECHO, async (stream, remote) => {
    seen.push({ onion: remote.onion, transport: remote.transport });
    for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain();
    await stream.close();
  });
  return seen;
}

async function roundTrip(
  a: AgentNode,
  target: string,
  body: Buffer,
): Promise<{ back: Buffer; route: unknown }> {
  const stream = await a.dialProtocol(target, ECHO, { timeoutMs: 30_000 });
  const route = a.routeOfStream(stream);
  stream.send(body);
  await stream.close();
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c.subarray());
  return { back: Buffer.concat(parts), route };
}

/** A TCP server standing in for tor's SOCKS port: counts connections, so "nothing went to tor" is checked. */
async function fakeSocks(): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as net.AddressInfo).port, count: () => n };
}

/** Three relays whose exits reach `peer`'s onion listener; a client mesh over them. */
async function meshTo(peer: { key: AgentKey; node: AgentNode }) {
  const begun: string[] = [];
  const net3 = await startRelays(3, {
    onionConnect: async (host, _port, { signal }) => {
      if (host !== peer.key.onion) throw new Error('unknown onion');
      const s = net.connect({ host: '127.0.0.1', port: peer.node.listenPort });
      await once(s, 'connect', { signal });
      return s;
    },
    onBegin: (t, allowed) => void (allowed && begun.push(`${t.host}:${t.port}`)),
  });
  cleanups.push(net3.close);
  const mesh = new Mesh({ relays: net3.infos, hops: 3, standby: false });
  cleanups.push(() => mesh.close());
  return { mesh, begun };
}

describe('the mesh route', () => {
  it('mesh-only: the stream to the peer onion goes through the mesh, reported as mesh; tor is never dialled', async () => {
    const b = await node();
    const seen = await echo(b.node);
    const { mesh, begun } = await meshTo(b);
    const socks = await fakeSocks();
    const a = await node({
      socks: { host: '127.0.0.1', port: socks.port },
      peerPolicies: { [b.key.onion]: 'mesh-only' },
      meshConnect: (onion, port, o) => mesh.connect(`${onion}:${port}`, o),
    });
    const body = Buffer.alloc(300_000, 7);
    const first = await roundTrip(a.node, b.key.onion, body);
    expect(first.back.equals(body)).toBe(true);
    expect(first.route).toBe('mesh');
    const second = await roundTrip(a.node, b.key.onion, Buffer.from('again'));
    expect(second.back.toString()).toBe('again');
    expect(second.route).toBe('mesh');
    // one BEGIN to the peer's onion: the second stream reused the mesh connection
    expect(begun).toEqual([`${b.key.onion}:4001`]);
    expect(a.node.connections().map((c) => [c.onion, c.transport])).toEqual([[b.key.onion, 'mesh']]);
    // the receiver sees an inbound connection through its onion listener: from its side, that is tor
    expect(seen).toEqual([
      { onion: a.key.onion, transport: 'tor' },
      { onion: a.key.onion, transport: 'tor' },
    ]);
    expect(socks.count()).toBe(0);
  });

  it('mesh-only with no mesh set up fails with ERR_TRANSPORT_POLICY and sends nothing to tor', async () => {
    const b = await node();
    const socks = await fakeSocks();
    const a = await node({
      socks: { host: '127.0.0.1', port: socks.port },
      peerPolicies: { [b.key.onion]: 'mesh-only' },
    });
    await expect(a.node.dialProtocol(b.key.onion, ECHO, { timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_POLICY',
    });
    expect(socks.count()).toBe(0);
  });

  it('mesh-then-tor: a failed mesh is announced (mesh → tor) before tor is dialled', async () => {
    const b = await node();
    const socks = await fakeSocks();
    const events: { e: DowngradeEvent; socksBefore: number }[] = [];
    const a = await node({
      socks: { host: '127.0.0.1', port: socks.port },
      peerPolicies: { [b.key.onion]: 'mesh-then-tor' },
      meshConnect: async () => {
        throw Object.assign(new Error('no relay answers'), { code: 'ERR_MESH' });
      },
      onDowngrade: (e) => events.push({ e, socksBefore: socks.count() }),
      torDialAttempts: 1,
    });
    // the stand-in SOCKS port drops every connection, so the tor dial fails too, after the announcement
    await expect(a.node.dialProtocol(b.key.onion, ECHO, { timeoutMs: 20_000 })).rejects.toBeTruthy();
    expect(events.map(({ e }) => [e.from, e.to, e.peer])).toEqual([
      ['mesh', 'tor', b.node.peerId.toString()],
    ]);
    expect(events[0]?.socksBefore).toBe(0);
    expect(socks.count()).toBeGreaterThan(0);
  });
});
