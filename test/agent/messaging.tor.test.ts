// Messaging between agents on the private Tor network: libp2p nodes (tor-only) dialling each other's onions
// through their own agent tors, the hybrid PQ channel, the git memory store.
import '../../src/_polyfill.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messenger, type ReceivedMessage } from '../../src/agent/messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from '../../src/agent/messaging-adapters.js';
import { MESSAGE_PROTOCOLS } from '../../src/agent/messaging-connections.js';
import { type DirectMessaging, startDirectMessaging } from '../../src/agent/messaging-direct.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { startTestTor } from '../helpers/tor.js';
import { waitFor } from './messaging-helpers.js';

const VPORT = 4001;
let tmp: string;
let torA: TorHandle;
let torB: TorHandle;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-msg-tor-'));
  [torA, torB] = await Promise.all([startTestTor(tmp, { name: 'a' }), startTestTor(tmp, { name: 'b' })]);
}, 180_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  await Promise.all([torA?.stop(), torB?.stop()]);
  await rm(tmp, { recursive: true, force: true });
}, 60_000);

interface TorAgent {
  key: AgentKey;
  node: AgentNode;
  /** Direct messaging streams (as the agent runtime starts them), when asked for. */
  direct: DirectMessaging | null;
  messenger: Messenger;
  got: ReceivedMessage[];
  home: string;
  publish(): Promise<void>;
}

async function torAgent(tor: TorHandle, name: string, publish = true, withDirect = false): Promise<TorAgent> {
  const key = AgentKey.random();
  const home = join(tmp, name);
  const node = await createAgentNode({
    key,
    socks: { host: tor.socksHost, port: tor.socksPort },
    onion: { serviceId: key.serviceId, virtualPort: VPORT },
    torDialAttempts: 3,
  });
  const memory = await MemoryStore.open(join(home, 'memory'), key);
  const direct = withDirect
    ? await startDirectMessaging({
        base: messagingNodeFromAgentNode(node),
        openStream: (onion, port, o) => node.openOnionStream(onion, port, o),
        protocols: Object.values(MESSAGE_PROTOCOLS),
        listen: { path: join(tmp, `${name}.sock`) },
      })
    : null;
  const messenger = new Messenger({
    node: direct ? direct.node : messagingNodeFromAgentNode(node),
    key,
    store: messageStoreFromMemory(memory, { journalPath: join(tmp, name, 'messages.journal') }),
    outboxDir: join(home, 'outbox'),
    retry: { initialDelayMs: 1_000, maxDelayMs: 5_000, attemptTimeoutMs: 30_000 },
  });
  const got: ReceivedMessage[] = [];
  messenger.on('message', (m: ReceivedMessage) => got.push(m));
  await messenger.start();
  stops.push(async () => {
    await messenger.stop();
    await direct?.close();
    await node.stop();
    await memory.close();
  });
  const agent: TorAgent = {
    key,
    node,
    direct,
    messenger,
    got,
    home,
    async publish() {
      await publishOnion(tor, key, {
        targetPort: node.listenPort,
        virtualPort: VPORT,
        timeoutMs: 60_000,
        ...(direct ? { extraPorts: [direct.port] } : {}),
      });
    },
  };
  if (publish) await agent.publish();
  return agent;
}

describe('messaging over the private Tor network', () => {
  it('two agents: delivered both ways over tor, ping reports tor and the peer identity', async () => {
    const a = await torAgent(torA, 'a1');
    const b = await torAgent(torB, 'b1');
    const first = await a.messenger.send(b.key.onion, 'hello through tor', { timeoutMs: 90_000 });
    expect(first.status).toBe('delivered');
    expect(b.got.map((m) => [m.from, m.text, m.verified])).toEqual([
      [a.key.onion, 'hello through tor', true],
    ]);
    expect((await b.messenger.send(a.key.onion, 'reply', { timeoutMs: 60_000 })).status).toBe('delivered');
    expect(a.got.map((m) => m.text)).toEqual(['reply']);
    for (const c of a.node.connections()) expect(c.transport).toBe('tor');

    const ping = await a.messenger.ping(b.key.onion, { timeoutMs: 60_000 });
    expect(ping).toMatchObject({
      peer: { onion: b.key.onion, pubkey: b.key.publicKeyHex },
      transport: 'tor',
      suite: 'hybrid-x25519-mlkem768',
      reused: true,
    });
    expect(ping.rttMs).toBeGreaterThan(0);
  }, 180_000);

  it('peer offline → queued → delivered once its onion comes up', async () => {
    const a = await torAgent(torA, 'a2');
    const b = await torAgent(torB, 'b2', false);
    const r = await a.messenger.send(b.key.onion, 'waiting for you', { timeoutMs: 5_000 });
    expect(r.status).toBe('queued');
    expect(await readdir(join(a.home, 'outbox'))).toEqual([`${r.id}.json`]);
    await b.publish();
    const t0 = Date.now();
    await waitFor(() => b.got.length === 1, 90_000, 'delivery after the onion was published');
    expect(Date.now() - t0).toBeLessThan(90_000);
    expect(b.got[0]).toMatchObject({ id: r.id, from: a.key.onion, text: 'waiting for you' });
    await waitFor(async () => (await readdir(join(a.home, 'outbox'))).length === 0, 30_000, 'outbox emptied');
  }, 240_000);

  it('direct streams through tor: two agents with them use one (no libp2p connection); one without is reached over libp2p', async () => {
    const a = await torAgent(torA, 'a3', true, true);
    const b = await torAgent(torB, 'b3', true, true);
    const old = await torAgent(torB, 'old3', true, false);
    expect((await a.messenger.send(b.key.onion, 'direct', { timeoutMs: 90_000 })).status).toBe('delivered');
    expect((await b.messenger.send(a.key.onion, 'direct back', { timeoutMs: 60_000 })).status).toBe(
      'delivered',
    );
    const ping = await a.messenger.ping(b.key.onion, { timeoutMs: 60_000 });
    expect(ping).toMatchObject({ transport: 'tor', suite: 'hybrid-x25519-mlkem768', reused: true });
    expect(a.direct?.stats()).toEqual({ dialled: 1, accepted: 0, fellBack: 0 });
    expect(b.direct?.stats()).toEqual({ dialled: 0, accepted: 1, fellBack: 0 });
    // the messages never touched libp2p: no connection between the two nodes
    expect(a.node.connections().filter((c) => c.onion === b.key.onion)).toEqual([]);
    expect(b.got.map((m) => m.text)).toEqual(['direct']);
    expect(a.got.map((m) => m.text)).toEqual(['direct back']);

    // an agent that does not publish the port: tor refuses the connect (SOCKS reply 5), libp2p carries it,
    // both ways (its own dials are libp2p ones, which a's node answers as before)
    expect((await a.messenger.send(old.key.onion, 'to an older agent', { timeoutMs: 90_000 })).status).toBe(
      'delivered',
    );
    expect(a.direct?.stats().fellBack).toBe(1);
    expect(old.got.map((m) => m.text)).toEqual(['to an older agent']);
    expect(a.node.connections().filter((c) => c.onion === old.key.onion).length).toBeGreaterThan(0);
    expect((await old.messenger.send(a.key.onion, 'from it', { timeoutMs: 60_000 })).status).toBe(
      'delivered',
    );
    await waitFor(() => a.got.length === 2, 30_000, "the older agent's message");
    expect(a.got[1]?.text).toBe('from it');

    // a new policy that refuses tor closes our direct stream to that peer, as it closes libp2p connections
    a.node.hybrid.setPeerPolicy(b.node.peerId, 'direct-only');
    await waitFor(
      () =>
        a.messenger.ping(b.key.onion, { timeoutMs: 5_000 }).then(
          () => false,
          () => true,
        ),
      30_000,
      'ping refused once the policy refuses tor',
    );
    expect(a.direct?.stats().dialled).toBe(1);
  }, 240_000);
});
