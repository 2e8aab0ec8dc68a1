// The SDK end to end on the private Tor network: two agents started with `Agent.start({ network })`, each
// with its own tor and onion, exchange PQ-protected messages, discover each other through the DHT and sync
// memory — all through the real parts (tor, libp2p, git).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { ReceivedMessage } from '../../src/agent/messaging.js';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import { testNetwork } from '../helpers/tor.js';

let root: string;
let alice: Agent;
let bob: Agent;

beforeAll(async () => {
  const net = await testNetwork();
  root = await mkdtemp(join(tmpdir(), 'mmogit-agent-'));
  alice = (await Agent.init({ configDir: join(root, 'alice') })).agent;
  bob = (await Agent.init({ configDir: join(root, 'bob') })).agent;
  await alice.start({ network: net.dir, timeoutMs: 90_000 });
  const bootstrap = onionMultiaddr(
    alice.address,
    DEFAULT_ONION_VIRTUAL_PORT,
    peerIdFromOnion(alice.address).toString(),
  );
  await bob.start({ network: net.dir, bootstrap: [bootstrap.toString()], timeoutMs: 90_000 });
}, 200_000);

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await rm(root, { recursive: true, force: true });
});

describe('Agent SDK over tor', () => {
  it('connects with a verified identity over tor and the hybrid PQ channel', async () => {
    const r = await alice.connect(bob.address);
    expect(r.peer.onion).toBe(bob.address);
    expect(r.peer.pubkey).toBe(bob.publicKeyHex);
    expect(r.transport).toBe('tor');
    expect(r.suite).toBe('hybrid-x25519-mlkem768');
    expect(r.rttMs).toBeGreaterThan(0);
    // tor-only: every connection of both nodes is an onion one
    for (const a of [alice, bob]) {
      expect(
        a
          .net()
          .status()
          .peers.every((p) => p.transport === 'tor'),
      ).toBe(true);
    }
  });

  it('delivers a signed message exactly once and stores it on both sides', async () => {
    const got: ReceivedMessage[] = [];
    bob.on('message', (m: ReceivedMessage) => got.push(m));
    const sent = await alice.send(bob.address, 'hello bob over tor');
    expect(sent.status).toBe('delivered');
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      id: sent.id,
      from: alice.address,
      text: 'hello bob over tor',
      verified: true,
    });
    const inbox = await bob.inbox();
    expect(inbox.filter((m) => m.id === sent.id)).toHaveLength(1);
  });

  it('advertises memory_sync and is discovered, verified, by the other agent', async () => {
    const ad = await bob.advertise(['memory_sync']);
    expect(ad.onion).toBe(bob.address);
    const found = [];
    for (let round = 0; round < 5 && found.length === 0; round++) {
      for await (const d of alice.discover('memory_sync', { timeoutMs: 20_000 })) found.push(d);
    }
    expect(found.map((f) => f.onion)).toContain(bob.address);
    expect(found.every((f) => f.verified && f.services.includes('memory_sync'))).toBe(true);
  });

  it('syncs memories both ways and each side recalls the other’s, verified, with its author', async () => {
    await alice.remember({ type: 'learning', content: 'alice learned this', tags: ['a'] });
    await bob.remember({ type: 'observation', content: 'bob saw that', tags: ['b'] });
    const r = await alice.sync(bob.address);
    expect(r.received).toBeGreaterThanOrEqual(1);
    expect(r.sent).toBeGreaterThanOrEqual(1);
    for (const [me, other, text] of [
      [alice, bob, 'bob saw that'],
      [bob, alice, 'alice learned this'],
    ] as const) {
      const memories = await me.recall({ kind: 'memory' });
      const theirs = memories.find((m) => m.author === other.address);
      expect(theirs?.verified).toBe(true);
      expect((theirs?.entry?.body as { content?: string } | undefined)?.content).toBe(text);
    }
    // both repos converge on the same head and stay valid for real git
    const heads = [alice, bob].map((a) =>
      execFileSync('git', ['--git-dir', join(a.configDir, 'memory'), 'rev-parse', 'refs/heads/main'], {
        encoding: 'utf8',
      }).trim(),
    );
    expect(heads[0]).toBe(heads[1]);
    for (const a of [alice, bob]) {
      execFileSync('git', ['--git-dir', join(a.configDir, 'memory'), 'fsck', '--strict'], { stdio: 'pipe' });
    }
  });
});
