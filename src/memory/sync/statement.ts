import { canonicalBytes } from '../../identity/canonical.js';
import { SYNC_PROTOCOL_VERSION } from './frames.js';

/**
 * The statement a sender signs (context `sync-ref/v1`) for the ref it offers: bound to the protocol version,
 * both identities and the receiver's fresh nonce, so it cannot be replayed in another session or direction.
 */
export function refStatement(from: string, to: string, nonce: string, head: string | null): Uint8Array {
  return canonicalBytes({ proto: SYNC_PROTOCOL_VERSION, from, to, nonce, head });
}
