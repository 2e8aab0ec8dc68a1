/**
 * Admission of inbound onion connections while their upgrade (multistream-select, Noise XX, yamux) runs.
 *
 * Over tor every inbound connection comes from tor's own socket on 127.0.0.1, so nothing tells an attacker's
 * connection from a genuine peer's before the Noise handshake has authenticated the peer. libp2p keeps a cap of
 * pending inbound upgrades and *refuses* every connection above it until one of them times out: a few hundred
 * idle connections, re-opened every upgrade timeout, kept every genuine peer out (docs/threat-model.md). Here
 * instead:
 *
 * - a connection that has not sent the first flight of a handshake ({@link HANDSHAKE_START_BYTES}) within
 *   {@link INBOUND_HANDSHAKE_START_TIMEOUT_MS} is dropped: idle, half-open and slow connections go in seconds;
 * - at most {@link MAX_PENDING_INBOUND} upgrades are pending; a new connection above that evicts the *oldest*
 *   pending one rather than being refused. Holding connections open no longer keeps anybody out: the newest
 *   connection is always admitted, and a genuine peer is evicted only if {@link MAX_PENDING_INBOUND} newer
 *   connections arrive while its own upgrade runs (an arrival rate, not a number of idle sockets);
 * - the whole upgrade has {@link INBOUND_UPGRADE_TIMEOUT_MS} (libp2p's own timeout is set to the same value).
 *
 * Eviction is by age only. Ranking by progress (bytes received) was tried and rejected: a newcomer has sent
 * nothing yet, so it would rank lowest and be the first evicted (refusal again), and an attacker sending more
 * bytes than a real handshake would outrank genuine peers.
 * @module
 */

/**
 * A genuine dialer writes its first flight right after tor's CONNECTED cell, one circuit round trip after tor
 * opened our socket (two if its multistream-select waits for our echo before the Noise message).
 */
export const INBOUND_HANDSHAKE_START_TIMEOUT_MS = 5_000;
/**
 * The inbound upgrade's whole budget: about four circuit round trips (multistream, Noise XX's three messages,
 * the muxer's multistream), several seconds each on a slow public-tor circuit.
 */
export const INBOUND_UPGRADE_TIMEOUT_MS = 15_000;
/**
 * Pending upgrades at once. The bound on what they cost (a socket, Noise state, buffers: under 30 KiB each, measured
 * by test/reliability/exhaustion.test.ts, the attacking sockets of the same process included); above it the oldest is evicted, so the larger the cap, the faster an
 * attacker must open connections to evict a genuine upgrade (cap ÷ the genuine peer's upgrade time).
 */
export const MAX_PENDING_INBOUND = 256;

/**
 * What a libp2p dialer sends before it must wait for our answer: the multistream-select header and the
 * proposal `/noise` (varint-prefixed lines, 20 + 8 bytes; multistream-select spec) and Noise XX's first message
 * (2-byte length + a 32-byte ephemeral key; libp2p noise spec "Wire format"). A connection that sent this much
 * has started a handshake.
 */
export const HANDSHAKE_START_BYTES = 20 + 8 + 2 + 32;

/** Why a pending connection was dropped. */
export type EvictReason = 'handshake-start-timeout' | 'upgrade-timeout' | 'evicted';

export interface PendingInboundOptions {
  maxPending?: number;
  handshakeStartTimeoutMs?: number;
  upgradeTimeoutMs?: number;
  /** Called for every drop, for logs and tests. */
  onEvict?: (reason: EvictReason) => void;
}

/** One admitted connection, as {@link PendingInbound.admit} returns it. */
export interface PendingSlot {
  /** The connection sent `bytes` more (once {@link HANDSHAKE_START_BYTES} in all: its first deadline stops). */
  received(bytes: number): void;
  /** The upgrade ended (either way): the slot is freed and its timers stop. Idempotent. */
  release(): void;
}

interface Entry {
  drop: (reason: EvictReason) => void;
  /** Until the handshake started (undefined after). */
  start: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout;
  bytes: number;
}

/**
 * The set of pending inbound upgrades, oldest first.
 *
 * @example
 * const pending = new PendingInbound();
 * const slot = pending.admit(() => socket.destroy());
 * socket.on('data', (b) => slot.received(b.length));
 * upgrade.finally(() => slot.release());
 */
export class PendingInbound {
  /** Insertion order is admission order: the first key is the oldest. */
  private readonly entries = new Map<number, Entry>();
  private next = 0;
  private readonly max: number;
  private readonly startMs: number;
  private readonly upgradeMs: number;

  constructor(private readonly options: PendingInboundOptions = {}) {
    this.max = Math.max(1, options.maxPending ?? MAX_PENDING_INBOUND);
    this.startMs = options.handshakeStartTimeoutMs ?? INBOUND_HANDSHAKE_START_TIMEOUT_MS;
    this.upgradeMs = options.upgradeTimeoutMs ?? INBOUND_UPGRADE_TIMEOUT_MS;
  }

  /** How many upgrades are pending. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Admits a new connection; `drop` closes it (called at most once, when it times out or is evicted). When the
   * set is full, the oldest pending connection is dropped first.
   */
  admit(drop: (reason: EvictReason) => void): PendingSlot {
    while (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value as number;
      this.dropEntry(oldest, 'evicted');
    }
    const id = this.next++;
    const start = setTimeout(() => this.dropEntry(id, 'handshake-start-timeout'), this.startMs);
    const deadline = setTimeout(() => this.dropEntry(id, 'upgrade-timeout'), this.upgradeMs);
    start.unref();
    deadline.unref();
    this.entries.set(id, { drop, start, deadline, bytes: 0 });
    return {
      received: (bytes: number) => {
        const e = this.entries.get(id);
        if (e?.start === undefined) return;
        e.bytes += bytes;
        if (e.bytes >= HANDSHAKE_START_BYTES) {
          clearTimeout(e.start);
          e.start = undefined;
        }
      },
      release: () => this.remove(id),
    };
  }

  /** Drops every pending connection (the listener closes). */
  clear(): void {
    for (const id of [...this.entries.keys()]) this.dropEntry(id, 'evicted');
  }

  private remove(id: number): Entry | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    this.entries.delete(id);
    clearTimeout(e.start);
    clearTimeout(e.deadline);
    return e;
  }

  private dropEntry(id: number, reason: EvictReason): void {
    const e = this.remove(id);
    if (e === undefined) return;
    this.options.onEvict?.(reason);
    e.drop(reason);
  }
}
