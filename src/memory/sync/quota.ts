import { MmogitError } from '../../errors.js';

/**
 * Per-peer quotas of the sync protocol: at most one sync at a time per peer (and a few for all peers
 * together), a rate of new syncs per peer, and per-peer budgets of pack bytes and new entries over time. Any
 * agent that completes the handshake may sync, and onion identities cost nothing, so the global cap on
 * concurrent syncs is what bounds a crowd of fresh identities; the per-peer budgets bound one identity.
 * Token buckets (capacity = the burst, refilled continuously) keep the state per peer to a few numbers.
 * @module
 */

export interface SyncQuotaLimits {
  /** Syncs with one peer at once. */
  perPeerConcurrent: number;
  /** Syncs at once, all peers together. */
  totalConcurrent: number;
  /** Syncs a peer may start in a burst, and refilled per hour. */
  syncBurst: number;
  syncsPerHour: number;
  /** Compressed pack bytes a peer may send us per hour (also the burst). */
  bytesPerHour: number;
  /** New entries a peer may deliver per hour (also the burst). */
  entriesPerHour: number;
  /** Peers remembered at once; the least recently seen is forgotten first. */
  maxPeers: number;
}

export const DEFAULT_SYNC_QUOTA: SyncQuotaLimits = {
  perPeerConcurrent: 1,
  totalConcurrent: 8,
  syncBurst: 10,
  syncsPerHour: 120,
  bytesPerHour: 256 * 1024 * 1024,
  entriesPerHour: 200_000,
  maxPeers: 4096,
};

const HOUR_MS = 3_600_000;

class Bucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly capacity: number,
    private readonly perHour: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  /** Takes `n` tokens if there are that many. */
  take(n: number, now: number): boolean {
    if (this.capacity === Number.POSITIVE_INFINITY) return true;
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perHour) / HOUR_MS);
    this.last = now;
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }
}

interface PeerState {
  running: number;
  syncs: Bucket;
  bytes: Bucket;
  entries: Bucket;
}

/** One running sync's account: charge what the peer delivers, then `end()`. */
export interface SyncLease {
  /** Compressed pack bytes received; throws ERR_RATE_LIMITED past the peer's budget. */
  chargeBytes(n: number): void;
  /** New entries received; throws ERR_RATE_LIMITED past the peer's budget. */
  chargeEntries(n: number): void;
  end(): void;
}

export class SyncQuota {
  readonly limits: SyncQuotaLimits;
  private readonly peers = new Map<string, PeerState>();
  private running = 0;

  constructor(
    limits: Partial<SyncQuotaLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_SYNC_QUOTA, ...limits };
  }

  /** No limits at all (tests and tools that sync with themselves). */
  static unlimited(): SyncQuota {
    const inf = Number.POSITIVE_INFINITY;
    return new SyncQuota({
      perPeerConcurrent: inf,
      totalConcurrent: inf,
      syncBurst: inf,
      syncsPerHour: inf,
      bytesPerHour: inf,
      entriesPerHour: inf,
    });
  }

  private peer(onion: string): PeerState {
    const now = this.now();
    let p = this.peers.get(onion);
    if (p) this.peers.delete(onion);
    else {
      const l = this.limits;
      p = {
        running: 0,
        syncs: new Bucket(l.syncBurst, l.syncsPerHour, now),
        bytes: new Bucket(l.bytesPerHour, l.bytesPerHour, now),
        entries: new Bucket(l.entriesPerHour, l.entriesPerHour, now),
      };
      // Forget the least recently seen idle peer when full (a running one is never forgotten).
      if (this.peers.size >= this.limits.maxPeers) {
        for (const [k, v] of this.peers) {
          if (v.running === 0) {
            this.peers.delete(k);
            break;
          }
        }
      }
    }
    this.peers.set(onion, p);
    return p;
  }

  /** Starts a sync with `onion`, or throws ERR_RATE_LIMITED (one at a time, rate, global cap). */
  begin(onion: string): SyncLease {
    const p = this.peer(onion);
    const refuse = (why: string) =>
      new MmogitError('ERR_RATE_LIMITED', `sync refused: ${why}`, { details: { peer: onion } });
    if (p.running >= this.limits.perPeerConcurrent) throw refuse('a sync with this peer is already running');
    if (this.running >= this.limits.totalConcurrent) throw refuse('too many syncs running');
    if (!p.syncs.take(1, this.now())) throw refuse('this peer syncs too often');
    p.running++;
    this.running++;
    let ended = false;
    return {
      chargeBytes: (n) => {
        if (!p.bytes.take(n, this.now())) throw refuse('this peer sent more pack data than its budget');
      },
      chargeEntries: (n) => {
        if (!p.entries.take(n, this.now())) throw refuse('this peer sent more entries than its budget');
      },
      end: () => {
        if (ended) return;
        ended = true;
        p.running--;
        this.running--;
      },
    };
  }
}

const perStore = new WeakMap<object, SyncQuota>();

/** The quota shared by every sync of one store (created on first use with the defaults). */
export function quotaOf(store: object): SyncQuota {
  let q = perStore.get(store);
  if (!q) {
    q = new SyncQuota();
    perStore.set(store, q);
  }
  return q;
}
