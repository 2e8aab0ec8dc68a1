// The DHT re-join after the agent's tor came back (src/agent/runtime-steps.ts startDiscoveryStep `rejoin`),
// on loopback: with no bootstrap address (or none reachable) it used to do nothing and record nothing; now it
// runs a self-lookup through the peers the routing table still holds, records the outcome, and stays bounded
// and abortable (a peer that never answers a DHT query cannot hold it).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kadDHT } from '@libp2p/kad-dht';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanups, startDiscoveryStep } from '../../src/agent/runtime-steps.js';
import { DHT_PROTOCOL, dhtServiceOptions } from '../../src/discovery/dht.js';
import type { DiscoveryNode } from '../../src/discovery/discovery.js';
import { selfLookup } from '../../src/discovery/self-lookup.js';
import { AgentKey } from '../../src/identity/keys.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { type LoopbackAgent, routingTableSize, startLoopbackAgent } from '../support/loopback.js';

let dir: string;
const peers: LoopbackAgent[] = [];
const nodes: AgentNode[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-rejoin-'));
  peers.push(...(await Promise.all([startLoopbackAgent(), startLoopbackAgent(), startLoopbackAgent()])));
  // a small network of its own: the others know the first
  for (const p of peers.slice(1)) await p.node.dial(multiaddr(peers[0]!.addr));
  // identify adds each to the others' routing tables: wait, so what a lookup can find is known
  const [hub, ...spokes] = peers;
  await until(
    () => routingTableSize(hub!.node) === 2 && spokes.every((p) => routingTableSize(p.node) === 1),
    10_000,
    "the peers' routing tables",
  );
});
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => {});
  for (const p of peers) await Promise.resolve(p.node.stop()).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

/** An agent node with the agent's DHT (loopback addresses allowed), and its discovery step with `bootstrap`. */
async function agentWithRejoin(bootstrap: string[]) {
  const key = AgentKey.random();
  const node = await createAgentNode({
    key,
    policy: 'direct-only',
    services: { dht: kadDHT(dhtServiceOptions({ allowPrivateAddresses: true })) },
  });
  nodes.push(node);
  const events: { type: string; detail: string }[] = [];
  const cleanups = new Cleanups();
  const step = startDiscoveryStep(
    { key, configDir: dir, emit: () => false },
    node,
    bootstrap,
    undefined,
    (type, detail) => events.push({ type, detail }),
    cleanups,
    new AgentMetrics(),
  );
  return { node, events, cleanups, ...step };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('DHT re-join without a bootstrap agent', () => {
  it('with no bootstrap address: a self-lookup through the routing table, recorded as dht-rejoin', async () => {
    const a = await agentWithRejoin([]);
    // Peers it met before (its tor restarted since: the table is what is left of the DHT).
    await a.node.libp2p.dial(multiaddr(peers[1]!.addr));
    await until(() => routingTableSize(a.node.libp2p as DiscoveryNode) > 0, 10_000, 'a routing-table peer');
    const at = Date.now();
    await a.rejoin();
    expect(Date.now() - at).toBeLessThan(30_000);
    const rejoins = a.events.filter((e) => e.type.startsWith('dht-'));
    expect(rejoins).toHaveLength(1);
    expect(rejoins[0]).toMatchObject({ type: 'dht-rejoin' });
    const m =
      /^self-lookup \(no bootstrap address\) through (\d+) routing-table peers: (\d+) closest found/.exec(
        rejoins[0]?.detail ?? '',
      );
    expect(m?.[1]).toBe('1');
    // at least the peer in the table answered (whether it names its neighbour depends on the random ids'
    // XOR distances: kad-dht follows only peers closer to the key than the one that named them)
    expect(Number(m?.[2])).toBeGreaterThanOrEqual(1);
    await a.cleanups.run();
  });

  it('with no peer in the routing table either: dht-rejoin-failed, at once', async () => {
    const a = await agentWithRejoin([]);
    const at = Date.now();
    await a.rejoin();
    expect(Date.now() - at).toBeLessThan(2_000);
    expect(a.events).toEqual([
      {
        type: 'dht-rejoin-failed',
        detail: 'self-lookup (no bootstrap address): self-lookup: the routing table holds no peer to ask',
      },
    ]);
    await a.cleanups.run();
  });

  it('when the bootstrap fails, falls back to the routing table after it', async () => {
    // An address that cannot be dialled fails the bootstrap at once (a dead one would take its retries first).
    const a = await agentWithRejoin(['/not/a/multiaddr']);
    await a.bootstrapped();
    await a.node.libp2p.dial(multiaddr(peers[2]!.addr));
    await until(() => routingTableSize(a.node.libp2p as DiscoveryNode) > 0, 10_000, 'a routing-table peer');
    a.events.length = 0;
    await a.rejoin();
    expect(a.events.map((e) => e.type)).toEqual(['dht-bootstrap-failed', 'dht-rejoin']);
    expect(a.events[1]?.detail).toContain('(no bootstrap agent reachable)');
    await a.cleanups.run();
  });

  it('is bounded and abortable: a routing-table peer that never answers cannot hold it', async () => {
    // A peer that speaks our DHT protocol in identify, so it enters the table, and then never answers.
    const mute = await createAgentNode({ key: AgentKey.random(), policy: 'direct-only' });
    nodes.push(mute);
    await mute.libp2p.handle(DHT_PROTOCOL, () => {
      /* read nothing, answer nothing */
    });
    const a = await agentWithRejoin([]);
    await a.node.libp2p.dial(
      multiaddr(`/ip4/127.0.0.1/tcp/${mute.listenPort}/p2p/${mute.peerId.toString()}`),
    );
    await until(
      () => routingTableSize(a.node.libp2p as DiscoveryNode) > 0,
      10_000,
      'the mute peer in the table',
    );

    // bounded: our own clock ends the lookup
    let at = Date.now();
    await expect(selfLookup(a.node.libp2p, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
    });
    expect(Date.now() - at).toBeLessThan(2_000);

    // abortable: stopping the agent ends a re-join in progress, and a stopped agent records nothing for it
    at = Date.now();
    const rejoin = a.rejoin();
    await new Promise((r) => setTimeout(r, 200));
    await a.cleanups.run();
    await rejoin;
    expect(Date.now() - at).toBeLessThan(3_000);
    expect(a.events).toEqual([]);
  });
});
