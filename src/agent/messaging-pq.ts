/**
 * The hybrid PQ channel (src/pqc) as the messenger's session layer. Kept apart from the other adapters so
 * messaging.ts does not pull libp2p's modules into its import graph.
 * @module
 */
import { acceptSession, initiateSession } from '../pqc/index.js';
import type { MessagingSecurity } from './messaging-types.js';

/**
 * The hybrid PQ channel of src/pqc as the messenger's session layer. `maxPayload` caps one record in both
 * directions (the messenger passes its largest legal frame, so the PQ layer refuses anything bigger unread).
 *
 * @example
 * new Messenger({ node, key, store, outboxDir, security: pqMessagingSecurity({ maxPayload: 512 * 1024 }) });
 */
export function pqMessagingSecurity(options: { maxPayload?: number } = {}): MessagingSecurity {
  return {
    initiate: (channel, key, o) =>
      initiateSession(channel, key, {
        expectedPeer: o.expectedPeer,
        allowClassical: o.allowClassical ?? false,
        ...(options.maxPayload !== undefined ? { maxPayload: options.maxPayload } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      }),
    accept: (channel, key, o) =>
      acceptSession(channel, key, {
        allowClassical: o.allowClassical ?? false,
        ...(options.maxPayload !== undefined ? { maxPayload: options.maxPayload } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      }),
  };
}
