// A 3-hop mesh circuit over onions on the private Tor network: three relays, each an agent with its own tor,
// reachable only on its onion (no --listen), advertising `mesh_relay` in the DHT; a client agent finds their
// descriptors there and carries a stream to a local TCP server through relay onion → onion → onion. (The
// circuit uses the three relays by name: the shared network's DHT may still list relays of earlier runs.)
// Then the `mesh` transport route: the client agent's messages and memory sync to a fourth agent (bob), whose
// peer policy is mesh-only, go through that circuit to bob's onion.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { exitPolicyFrom } from '../../src/mesh/exit-policy.js';
import type { Mesh } from '../../src/mesh/mesh.js';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import { testNetwork } from '../helpers/tor.js';
import { patternBytes, sha256, sinkSource } from './_helpers.js';

let root: string;
const agents: Agent[] = [];
let src: Awaited<ReturnType<typeof sinkSource>>;
let client: Agent;
let bob: Agent;
/** Targets each relay opened as an exit, by relay onion. */
const exited = new Map<string, string[]>();
let mesh: Mesh;
let foundByService = 0;
// Five agents and their tors share this process on a loaded 2-core machine: event-loop stalls past the default
// 1.5 s (3 × 500 ms) would read as dead links. Detection speed is measured by the benchmarks, not here.
const INTERVAL_MS = 2_000;
let discovered: import('../../src/mesh/circuit.js').RelayInfo[] = [];

beforeAll(async () => {
  const net = await testNetwork();
  root = await mkdtemp(join(tmpdir(), 'mmogit-mesh-tor-'));
  src = await sinkSource(1_000_000);
  const open = async (name: string) => {
    const a = (await Agent.init({ configDir: join(root, name) })).agent;
    agents.push(a);
    return a;
  };
  const first = await open('relay0');
  await first.start({ network: net.dir, timeoutMs: 120_000 });
  // the first relay is the others' DHT bootstrap, so the test does not depend on the network's bootstrap agent
  const boot = onionMultiaddr(
    first.address,
    DEFAULT_ONION_VIRTUAL_PORT,
    peerIdFromOnion(first.address).toString(),
  ).toString();
  const rest = await Promise.all(['relay1', 'relay2', 'client', 'bob'].map(open));
  await Promise.all(rest.map((a) => a.start({ network: net.dir, bootstrap: [boot], timeoutMs: 120_000 })));
  client = rest[2] as Agent;
  bob = rest[3] as Agent;
  for (const r of agents.slice(0, 3)) {
    const seen: string[] = [];
    exited.set(r.address, seen);
    await r.mesh.relay({
      exitPolicy: exitPolicyFrom([`127.0.0.1:${src.port}`]),
      intervalMs: INTERVAL_MS,
      onBegin: (t, allowed) => void (allowed && seen.push(`${t.host}:${t.port}`)),
    });
  }
  const { relayFromAdvert } = await import('../../src/mesh/descriptor.js');
  const found = new Map<string, import('../../src/mesh/circuit.js').RelayInfo>();
  // A relay that advertised before its routing table filled re-publishes within seconds (discovery's sparse
  // retry), so search in rounds, bounded, until the three relays are found.
  const deadline = Date.now() + 180_000;
  while (found.size < 3 && Date.now() < deadline) {
    for await (const ad of client.net().discovery.discover('mesh_relay', { timeoutMs: 30_000, limit: 32 })) {
      const r = relayFromAdvert(ad.advert);
      if (r && agents.slice(0, 3).some((a) => a.address === r.onion)) found.set(r.onion, r);
    }
    foundByService = Math.max(foundByService, found.size);
    // a provider record the search missed: the relay's advert by key (still its signed descriptor)
    for (const a of agents.slice(0, 3)) {
      if (found.has(a.address)) continue;
      const v = await client.net().discovery.lookup(a.address, { timeoutMs: 30_000 });
      const r = v && relayFromAdvert(v.advert);
      if (r) found.set(r.onion, r);
    }
    if (found.size < 3) await new Promise((r) => setTimeout(r, 3_000));
  }
  discovered = [...found.values()];
  mesh = await client.mesh.client({ hops: 3, standby: false, relays: discovered, intervalMs: INTERVAL_MS });
}, 600_000);

afterAll(async () => {
  for (const a of agents) await a.close().catch(() => {});
  src?.server.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('mesh over the private Tor network', () => {
  it('finds the relays in the DHT and carries a stream through three relay onions, byte-identical', async () => {
    // each descriptor came from a verified advert: onion-only, exit policy included
    expect(discovered).toHaveLength(3);
    expect(foundByService).toBeGreaterThan(0);
    for (const r of discovered) {
      expect(r.tcp).toBeUndefined();
      expect(r.exitPolicy?.tcp).toEqual([{ host: '127.0.0.1', from: src.port, to: src.port }]);
      expect(r.exitPolicy?.onionPorts).toEqual([DEFAULT_ONION_VIRTUAL_PORT]);
    }
    const stream = await mesh.connect(`127.0.0.1:${src.port}`, { timeoutMs: 240_000 });
    const up = patternBytes(100_000);
    stream.end(up);
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    await once(stream, 'end');
    expect(sha256(Buffer.concat(parts))).toBe(src.sha256);
    const [leg] = mesh.circuits();
    expect(leg?.path).toHaveLength(3);
    const relayOnions = agents.slice(0, 3).map((a) => a.address);
    expect([...(leg?.path ?? [])].sort()).toEqual([...relayOnions].sort());
    // every hop was reached by onion: the relays have no TCP listener, and the DHT descriptors say so
    expect(mesh.relays.every((r) => r.tcp === undefined)).toBe(true);
  }, 300_000);

  // The target ends its side at once and over relay onions the upload arrives after that FIN: the exit keeps its
  // write side open (half-close), so the upload reaches the target whole (loopback regression in mesh.test.ts).
  it('the upload of that stream reaches the target byte-identical', async () => {
    const stream = await mesh.connect(`127.0.0.1:${src.port}`, { timeoutMs: 240_000 });
    const up = patternBytes(100_000);
    stream.end(up);
    stream.resume();
    await once(stream, 'end');
    for (let i = 0; i < 600 && !src.received.includes(sha256(up)); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(src.received).toContain(sha256(up));
  }, 300_000);

  it('a message and a memory sync to an agent whose policy is mesh-only go over the mesh, never tor', async () => {
    client.net().node.hybrid.setPeerPolicy(bob.address, 'mesh-only');
    await client.mesh.useForRoutes(mesh);
    const target = `${bob.address}:${DEFAULT_ONION_VIRTUAL_PORT}`;
    const before = mesh.linkStats();
    const sent = await client.send(bob.address, 'hello over the mesh', { timeoutMs: 240_000 });
    // A first attempt may fail on a loaded machine (one CI run: queued after 60 ms); agent traffic over the
    // mesh is then the outbox's to retry (issue: "retried by the outbox and acks, loses nothing"). Each failed
    // attempt's reason is printed, and the message must still arrive once, over the mesh only.
    let status: string = sent.status;
    for (let attempt = 1; status !== 'delivered' && attempt <= 5; attempt++) {
      const queued = client.outbox().find((m) => m.id === sent.id);
      if (queued === undefined) {
        status = 'delivered'; // the outbox's own retry got there first
        break;
      }
      process.stderr.write(
        `[mesh.tor] send attempt ${attempt} ${status}: ${queued.lastError?.code} ${queued.lastError?.message}\n`,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      status = await client
        .retryQueued(sent.id)
        .then((r) => r.status)
        .catch((e: unknown) => ((e as { code?: string }).code === 'ERR_NOT_FOUND' ? 'delivered' : 'queued'));
    }
    expect(status).toBe('delivered');
    expect((await bob.inbox({ from: client.address })).map((m) => m.text)).toEqual(['hello over the mesh']);
    // the route: an exit of this circuit opened bob's onion, the client's mesh links carried the bytes, and the
    // route reported (as `mmogit ping` / `tor connect` show it) is the mesh
    const exitOnion = mesh.circuits()[0]?.exit as string;
    expect(exited.get(exitOnion)).toContain(target);
    const afterSend = mesh.linkStats();
    expect(afterSend.bytesOut - before.bytesOut).toBeGreaterThan(2_000);
    expect((await client.connect(bob.address)).transport).toBe('mesh');
    const conns = client
      .net()
      .node.connections()
      .filter((c) => c.onion === bob.address);
    expect(conns.filter((c) => c.direction === 'outbound').map((c) => c.transport)).toEqual(['mesh']);
    // memory sync over the same route
    await bob.remember({ type: 'learning', content: 'synced through three relays', tags: ['mesh'] });
    const synced = await client.sync(bob.address, { timeoutMs: 240_000 });
    expect(synced.received).toBeGreaterThan(0);
    const theirs = (await client.recall({ kind: 'memory' })).find((m) => m.author === bob.address);
    expect(theirs?.verified).toBe(true);
    expect((theirs?.entry?.body as { content?: string } | undefined)?.content).toBe(
      'synced through three relays',
    );
    expect(mesh.linkStats().bytesIn - afterSend.bytesIn).toBeGreaterThan(1_000);
    expect(
      client
        .net()
        .node.connections()
        .filter((c) => c.onion === bob.address && c.direction === 'outbound')
        .map((c) => c.transport),
    ).toEqual(['mesh']);
  }, 400_000);
});
