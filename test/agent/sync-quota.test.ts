// The agent's sync responder honours the quota it is given (AgentStartOptions.syncQuota): real libp2p agent
// nodes on loopback (direct-only), the hybrid PQ channel and git-backed stores; no tor.
import '../../src/_polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { registerSync, SYNC_PROTOCOL } from '../../src/agent/sync.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { SyncQuota, syncOverChannel } from '../../src/memory/sync/index.js';
import { initiateSession } from '../../src/pqc/handshake.js';
import { channelFromSession } from '../../src/pqc/session-channel.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { channelFromStream } from '../../src/transport/stream-channel.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

async function agent() {
  const key = AgentKey.random();
  const dir = await mkdtemp(join(tmpdir(), 'mmogit-sync-quota-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const node = await createAgentNode({ key, policy: 'direct-only' });
  cleanup.push(() => node.stop());
  const store = await MemoryStore.open(join(dir, 'memory'), key);
  cleanup.push(() => store.close());
  return { key, node, store };
}

const directAddr = (node: AgentNode) =>
  `/ip4/127.0.0.1/tcp/${node.directPort ?? node.listenPort}/p2p/${node.peerId.toString()}`;

/** One sync from `a` to `b` as syncWithPeer runs it, dialled by address (direct-only has no onion route). */
async function syncOnce(a: Awaited<ReturnType<typeof agent>>, b: Awaited<ReturnType<typeof agent>>) {
  const signal = AbortSignal.timeout(20_000);
  const stream = await a.node.dialProtocol(directAddr(b.node), SYNC_PROTOCOL, { signal });
  const raw = channelFromStream(stream);
  try {
    const session = await initiateSession(raw, a.key, {
      expectedPeer: b.key.onion,
      signal,
      timeoutMs: 10_000,
    });
    // the initiator's own quota is not what this test is about
    return await syncOverChannel(a.store, channelFromSession(session, raw), {
      role: 'initiator',
      peer: session.peer,
      signal,
      quota: SyncQuota.unlimited(),
    });
  } finally {
    raw.abort(new Error('done'));
  }
}

describe('sync responder quota', () => {
  it('a burst of 2 with no refill: two syncs answered, the third refused as too often', async () => {
    const a = await agent();
    const b = await agent();
    await b.store.remember({ type: 'observation', content: 'from b' });
    await registerSync(b.node, b.key, b.store, { quota: new SyncQuota({ syncBurst: 2, syncsPerHour: 0 }) });
    expect((await syncOnce(a, b)).received).toBe(1);
    expect((await syncOnce(a, b)).received).toBe(0);
    // the default burst is 10, so this refusal is the given quota's
    await expect(syncOnce(a, b)).rejects.toThrow(/syncs too often/);
  }, 60_000);
});
