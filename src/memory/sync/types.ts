import type { SyncPort } from '../sync-port.js';
import type { Wire } from './frames.js';
import type { SyncLease, SyncQuota } from './quota.js';

/**
 * The public option, progress and result types of a sync, and the context its phases share.
 * @module
 */

/** The other agent, as authenticated by the channel (the PQ session's peer). */
export interface SyncPeer {
  publicKey: Uint8Array;
  onion: string;
}

/** Progress events, in order. */
export type SyncProgress =
  | { stage: 'hello' }
  | { stage: 'negotiate'; direction: 'send' | 'receive'; commits: number }
  | { stage: 'send'; objects: number; bytes: number }
  | { stage: 'receive'; bytes: number }
  | { stage: 'verify'; objects: number; entries: number }
  | { stage: 'integrate'; head: string | null; mode: 'none' | 'fast-forward' | 'merge' }
  | { stage: 'done' };

export interface SyncOptions {
  role: 'initiator' | 'responder';
  peer: SyncPeer;
  onProgress?: (event: SyncProgress) => void;
  /**
   * Which authors' entries to accept from this peer (hex public key). Default: any author, as long as the
   * entry's own signature verifies and the history is vouched for by the peer's signed ref.
   */
  acceptAuthor?: (authorHex: string) => boolean;
  /** Largest compressed pack accepted in this sync (default and ceiling {@link MAX_SYNC_PACK_BYTES}). */
  maxPackBytes?: number;
  /** Per-peer quotas (default: one shared by every sync of this store, with the default limits). */
  quota?: SyncQuota;
  /** Clock for the commit-time bound, in ms (default `Date.now`). */
  now?: () => number;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface SyncResult {
  /** Entries we sent. */
  sent: number;
  /** Entries we received (new to us). */
  received: number;
  /** Our `main` after the sync (the peer's is the same unless someone wrote meanwhile). */
  head: string | null;
  bytesSent: number;
  bytesReceived: number;
  ms: number;
}

/** What both phases of one sync share. */
export interface PhaseContext {
  port: SyncPort;
  wire: Wire;
  peer: SyncPeer;
  me: string;
  nonce: string;
  peerNonce: string;
  progress: (e: SyncProgress) => void;
  signal: AbortSignal;
  options: SyncOptions;
  lease: SyncLease;
}
