import { createLogger } from '../_log.js';
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import type { MemoryStore } from '../memory/store.js';
import { type SyncProgress, type SyncQuota, type SyncResult, syncOverChannel } from '../memory/sync/index.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import { acceptSession, initiateSession } from '../pqc/handshake.js';
import { channelFromSession } from '../pqc/session-channel.js';
import type { AgentNode } from '../transport/node.js';
import { channelFromStream } from '../transport/stream-channel.js';
import { countHandshake } from './session-metrics.js';

/**
 * Memory sync as a protocol of the agent's libp2p node: a stream, a post-quantum session on it, and
 * the git sync protocol of src/memory inside the session. No git server process anywhere.
 */

export const SYNC_PROTOCOL = '/mmogit/sync/2.0.0';
export const DEFAULT_SYNC_TIMEOUT_MS = 120_000;
const HANDSHAKE_TIMEOUT_MS = 30_000;

const log = createLogger('mmogit:agent:sync');

export interface SyncOptions {
  allowClassical?: boolean;
  /** Handshakes and open sessions are counted into it. */
  metrics?: AgentMetrics;
  signal?: AbortSignal;
  timeoutMs?: number;
  onProgress?: (e: Record<string, unknown>) => void;
}

/** Answers sync requests from peers (both directions happen in one session). */
export async function registerSync(
  node: AgentNode,
  key: AgentKey,
  store: MemoryStore,
  options: { allowClassical?: boolean; metrics?: AgentMetrics; quota?: SyncQuota } = {},
): Promise<void> {
  const metrics = options.metrics;
  await node.handle(SYNC_PROTOCOL, async (stream, remote) => {
    const signal = withTimeout(undefined, DEFAULT_SYNC_TIMEOUT_MS, 'sync (responder)');
    const raw = channelFromStream(stream);
    let release = () => {};
    try {
      const counted = await countHandshake(metrics, 'responder', () =>
        acceptSession(raw, key, {
          allowClassical: options.allowClassical ?? false,
          signal,
          timeoutMs: HANDSHAKE_TIMEOUT_MS,
        }),
      );
      const session = counted.session;
      release = counted.release;
      if (session.peer.onion !== remote.onion) {
        throw new MmogitError('ERR_HANDSHAKE', 'sync peer identity differs from the libp2p connection');
      }
      const r = await syncOverChannel(store, channelFromSession(session, raw), {
        role: 'responder',
        peer: session.peer,
        signal,
        // what peers may ask of us (default: the store's own quota with the default limits)
        ...(options.quota ? { quota: options.quota } : {}),
      });
      log('answered sync from %s: sent %d, received %d', remote.onion, r.sent, r.received);
      metrics?.syncRuns.inc({ role: 'responder', result: 'ok' });
      metrics?.syncEntries.inc({ direction: 'sent' }, r.sent);
      metrics?.syncEntries.inc({ direction: 'received' }, r.received);
      await session.close().catch(() => {});
    } catch (e) {
      log('sync from %s failed: %s', remote.onion, e instanceof Error ? e.message : String(e));
      metrics?.syncRuns.inc({ role: 'responder', result: 'error' });
      raw.abort(e instanceof Error ? e : new Error(String(e)));
    } finally {
      release();
    }
  });
}

/** Syncs with one peer (both directions): returns counts of entries sent and received and the new head. */
export async function syncWithPeer(
  node: AgentNode,
  key: AgentKey,
  store: MemoryStore,
  peer: string,
  options: SyncOptions = {},
): Promise<SyncResult> {
  const signal = withTimeout(
    options.signal,
    options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS,
    `sync with ${peer}`,
  );
  options.onProgress?.({ stage: 'connecting' });
  const stream = await node.dialProtocol(peer, SYNC_PROTOCOL, { signal });
  const raw = channelFromStream(stream);
  let release = () => {};
  try {
    const counted = await countHandshake(options.metrics, 'initiator', () =>
      initiateSession(raw, key, {
        expectedPeer: peer,
        allowClassical: options.allowClassical ?? false,
        signal,
        timeoutMs: HANDSHAKE_TIMEOUT_MS,
      }),
    );
    const session = counted.session;
    release = counted.release;
    const result = await syncOverChannel(store, channelFromSession(session, raw), {
      role: 'initiator',
      peer: session.peer,
      signal,
      onProgress: (p: SyncProgress) => options.onProgress?.({ ...p }),
    });
    await session.close().catch(() => {});
    return result;
  } catch (e) {
    raw.abort(e instanceof Error ? e : new Error(String(e)));
    throw e;
  } finally {
    release();
  }
}
