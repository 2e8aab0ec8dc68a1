// Messaging between agents on the private Tor network: libp2p nodes (tor-only) dialling each other's onions
// through their own agent tors, the hybrid PQ channel, the git memory store.
import '../../src/_polyfill.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messenger, type ReceivedMessage } from '../../src/agent/messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from '../../src/agent/messaging-adapters.js';
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
  messenger: Messenger;
  got: ReceivedMessage[];
  home: string;
  publish(): Promise<void>;
}

async function torAgent(tor: TorHandle, name: string, publish = true): Promise<TorAgent> {
  const key = AgentKey.random();
  const home = join(tmp, name);
  const node = await createAgentNode({
    key,
    socks: { host: tor.socksHost, port: tor.socksPort },
    onion: { serviceId: key.serviceId, virtualPort: VPORT },
    torDialAttempts: 3,
  });
  const memory = await MemoryStore.open(join(home, 'memory'), key);
  const messenger = new Messenger({
    node: messagingNodeFromAgentNode(node),
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
    await node.stop();
    await memory.close();
  });
  const agent: TorAgent = {
    key,
    node,
    messenger,
    got,
    home,
    async publish() {
      await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
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
});
