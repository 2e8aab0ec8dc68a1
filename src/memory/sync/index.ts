import { randomBytes } from 'node:crypto';
import { MmogitError, withTimeout } from '../../errors.js';
import { onionFromPublicKey } from '../../identity/onion.js';
import type { ByteChannel } from '../../transport/byte-channel.js';
import type { MemoryStore } from '../store.js';
import { decodeHello, PeerRefusedError, protocolError, SYNC_PROTOCOL_VERSION, T, Wire } from './frames.js';
import { DEFAULT_SYNC_TIMEOUT_MS } from './limits.js';
import { quotaOf } from './quota.js';
import { receivePhase } from './receive.js';
import { sendPhase } from './send.js';
import type { PhaseContext, SyncOptions, SyncResult } from './types.js';

/**
 * Memory sync between two agents over any {@link ByteChannel} (in an agent: a libp2p stream inside the
 * post-quantum session). No git server: both sides run this function, one as `initiator`, one as `responder`,
 * and both directions happen in one call. Wire format and rules: docs/protocol.md §3 (Sync).
 *
 * @example
 * const r = await syncOverChannel(store, channel, { role: 'initiator', peer: session.peer });
 * r.head; // both sides now point `main` at this commit
 * @module
 */

export { SYNC_PROTOCOL_VERSION } from './frames.js';
export {
  DEFAULT_SYNC_TIMEOUT_MS,
  MAX_SYNC_OBJECTS,
  MAX_SYNC_PACK_BYTES,
  MAX_SYNC_RAW_BYTES,
} from './limits.js';
export { DEFAULT_SYNC_QUOTA, SyncQuota, type SyncQuotaLimits } from './quota.js';
export type { SyncOptions, SyncPeer, SyncProgress, SyncResult } from './types.js';

/**
 * Runs one sync with `peer` over `channel`: the initiator sends first, then the responder; each receiver
 * verifies everything before moving its ref, and integrates by union, so both sides end on the same commit
 * and neither loses an entry. Refused with ERR_RATE_LIMITED past the store's per-peer quotas.
 */
export async function syncOverChannel(
  store: MemoryStore,
  channel: ByteChannel,
  options: SyncOptions,
): Promise<SyncResult> {
  const started = performance.now();
  const { peer } = options;
  if (!(peer?.publicKey instanceof Uint8Array) || onionFromPublicKey(peer.publicKey) !== peer.onion) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'sync peer onion does not match its public key');
  }
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS, 'memory sync');
  const wire = new Wire(channel, signal);
  const progress = options.onProgress ?? (() => {});
  const port = store.syncPort();
  const me = port.key.onion;
  const nonce = randomBytes(32).toString('hex');
  let lease: PhaseContext['lease'] | null = null;
  try {
    lease = (options.quota ?? quotaOf(store)).begin(peer.onion);
    await wire.send(T.hello, { proto: SYNC_PROTOCOL_VERSION, onion: me, nonce });
    const hello = decodeHello(await wire.expect(T.hello));
    if (hello.onion !== peer.onion) throw protocolError('peer announced another identity');
    progress({ stage: 'hello' });
    const ctx: PhaseContext = {
      port,
      wire,
      peer,
      me,
      nonce,
      peerNonce: hello.nonce,
      progress,
      signal,
      options,
      lease,
    };
    let sent: number;
    let received: number;
    if (options.role === 'initiator') {
      sent = await sendPhase(ctx);
      received = await receivePhase(ctx);
    } else {
      received = await receivePhase(ctx);
      sent = await sendPhase(ctx);
    }
    progress({ stage: 'done' });
    return {
      sent,
      received,
      head: port.head(),
      bytesSent: wire.bytesSent,
      bytesReceived: wire.bytesReceived,
      ms: performance.now() - started,
    };
  } catch (e) {
    // Tell the peer why (best effort) so it fails with a reason rather than a closed connection; a refusal
    // that came from the peer is not echoed back.
    if (e instanceof MmogitError && !(e instanceof PeerRefusedError) && e.code !== 'ERR_CONNECTION_CLOSED') {
      await wire.send(T.error, { code: e.code, message: e.message }).catch(() => {});
    }
    throw e;
  } finally {
    lease?.end();
  }
}
