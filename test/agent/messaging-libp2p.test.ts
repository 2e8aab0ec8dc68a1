// The messenger on the real agent parts, without tor: libp2p agent nodes (direct-only, 127.0.0.1), the
// hybrid PQ channel, and the git-backed memory store.
import '../../src/_polyfill.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Messenger, type ReceivedMessage } from '../../src/agent/messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from '../../src/agent/messaging-adapters.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { waitFor } from './messaging-helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

/** onion → current direct multiaddr of that agent's node */
type Book = Map<string, string>;

interface Live {
  key: AgentKey;
  home: string;
  node: AgentNode;
  memory: MemoryStore;
  messenger: Messenger;
  got: ReceivedMessage[];
  stop(): Promise<void>;
}

async function live(book: Book, key = AgentKey.random(), home?: string, journal = false): Promise<Live> {
  const dir = home ?? (await mkdtemp(join(tmpdir(), 'mmogit-msg-p2p-')));
  if (!home) cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const node = await createAgentNode({ key, policy: 'direct-only' });
  book.set(
    key.onion,
    `/ip4/127.0.0.1/tcp/${node.directPort ?? node.listenPort}/p2p/${node.peerId.toString()}`,
  );
  const memory = await MemoryStore.open(join(dir, 'memory'), key);
  const messenger = new Messenger({
    node: messagingNodeFromAgentNode(node, {
      resolve: (onion) => book.get(onion) ?? `/ip4/127.0.0.1/tcp/9/p2p/${node.peerId.toString()}`,
    }),
    key,
    store: messageStoreFromMemory(memory, journal ? { journalPath: join(dir, 'messages.journal') } : {}),
    outboxDir: join(dir, 'outbox'),
    retry: { initialDelayMs: 100, maxDelayMs: 500, attemptTimeoutMs: 5_000 },
  });
  const got: ReceivedMessage[] = [];
  messenger.on('message', (m: ReceivedMessage) => got.push(m));
  await messenger.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await messenger.stop();
    await node.stop();
    await memory.close();
    book.delete(key.onion);
  };
  cleanup.push(stop);
  return { key, home: dir, node, memory, messenger, got, stop };
}

describe('Messenger over libp2p (direct-only) with the git memory store', () => {
  it('delivers both ways over one libp2p stream, stores messages as private signed entries, pings', async () => {
    const book: Book = new Map();
    const a = await live(book);
    const b = await live(book);
    expect(await a.messenger.send(b.key.onion, 'hello over libp2p')).toMatchObject({ status: 'delivered' });
    expect(await b.messenger.send(a.key.onion, 'and back')).toMatchObject({ status: 'delivered' });
    expect(b.got.map((m) => [m.from, m.text, m.verified])).toEqual([
      [a.key.onion, 'hello over libp2p', true],
    ]);
    expect(a.got.map((m) => m.text)).toEqual(['and back']);
    expect(a.node.connections().length).toBe(1);

    // b's sent copy is stored just after its ack (off the round trip)
    await waitFor(async () => (await b.memory.recall({ kind: 'message' })).length === 2, 5_000, 'sent copy');
    const entries = await b.memory.recall({ kind: 'message' });
    expect(entries.map((e) => [e.visibility, e.verified, e.author])).toEqual([
      ['private', true, b.key.onion],
      ['private', true, b.key.onion],
    ]);
    expect(await b.memory.head()).toBeNull(); // nothing on the public (synced) branch
    expect((await b.messenger.inbox()).map((m) => m.text)).toEqual(['hello over libp2p']);

    const ping = await a.messenger.ping(b.key.onion);
    expect(ping).toMatchObject({
      peer: { onion: b.key.onion, pubkey: b.key.publicKeyHex },
      transport: 'direct',
      suite: 'hybrid-x25519-mlkem768',
    });
  });

  it('queued while the receiver is down, delivered exactly once after both restart (journaled store)', async () => {
    const book: Book = new Map();
    const aKey = AgentKey.random();
    const bKey = AgentKey.random();
    const a1 = await live(book, aKey, undefined, true);
    const b1 = await live(book, bKey, undefined, true);
    expect((await a1.messenger.send(bKey.onion, 'first')).status).toBe('delivered');
    await b1.stop();
    const queued = await a1.messenger.send(bKey.onion, 'while you were away', { timeoutMs: 3_000 });
    expect(queued.status).toBe('queued');
    await a1.stop();
    expect(await readdir(join(a1.home, 'outbox'))).toEqual([`${queued.id}.json`]);

    // Both come back (new ports) on the same config dirs.
    const b2 = await live(book, bKey, b1.home, true);
    const a2 = await live(book, aKey, a1.home, true);
    await waitFor(() => b2.got.length === 1, 15_000, 'queued message after restart');
    expect(b2.got[0]).toMatchObject({ id: queued.id, text: 'while you were away', from: aKey.onion });
    await waitFor(async () => (await readdir(join(a1.home, 'outbox'))).length === 0, 5_000, 'outbox emptied');
    expect((await b2.messenger.inbox()).map((m) => m.text)).toEqual(['first', 'while you were away']);
    expect(a2.messenger.pending()).toEqual([]);
    // Everything reached git once the journal's copies finished.
    await b2.messenger.stop();
    expect((await b2.memory.recall({ kind: 'message' })).map((e) => e.entry?.body.direction)).toEqual([
      'in',
      'in',
    ]);
    await a2.messenger.stop();
    expect((await a2.memory.recall({ kind: 'message' })).length).toBe(2);
  });
});
