/**
 * A mesh link (docs/protocol.md §8.1): the PQ channel of docs/protocol.md §4 between two neighbours, carrying
 * cells batched into channel payloads, with a keepalive (a PADDING cell once about one interval passed with
 * nothing sent) and a dead-link timer (nothing received for {@link LINK_DEAD_INTERVALS} of the neighbour's
 * intervals, RFC 5880 §6.8.4, not counting time this process was stalled: {@link SilenceMeter}).
 * @module
 */
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect } from '../_async.js';
import { createLogger } from '../_log.js';
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { acceptSession, initiateSession } from '../pqc/handshake.js';
import type { SecureSession } from '../pqc/session.js';
import { type ByteChannel, channelFromDuplex } from '../transport/byte-channel.js';
import { SilenceMeter } from './_silence.js';
import {
  CMD_PADDING,
  DEFAULT_BEACON_INTERVAL_MS,
  LINK_DEAD_INTERVALS,
  LINK_HANDSHAKE_TIMEOUT_MS,
  LINK_SEND_TIMEOUT_MS,
  MAX_LINK_PAYLOAD,
} from './_wire.js';
import { type Cell, encodeCell, parseCells } from './cells.js';
import { MeshError } from './errors.js';

const log = createLogger('mmogit:mesh:link');
/** Per-frame bytes of the PQ channel around a payload (length, type, tag). */
const FRAME_OVERHEAD = 21;
/** Sends with no timer of the session's own (the link's tick enforces the deadline, see #flush). */
const NO_SESSION_TIMER = Object.freeze({ timeoutMs: Number.POSITIVE_INFINITY });
/** Reads as views (see #readLoop). */
const AS_VIEW = Object.freeze({ view: true });

/** One encoded cell: a buffer, or its parts in order (joined by nobody: they go into the frame as they are). */
export type CellBytes = Buffer | readonly Buffer[];

/** Who owns a circuit id on a link: gets its cells and learns when the link dies. */
export interface CircuitEnd {
  onCell(cell: Cell): void;
  onLinkClosed(error: MeshError): void;
}

export interface LinkOptions {
  /** Keepalive interval (default {@link DEFAULT_BEACON_INTERVAL_MS}). */
  intervalMs?: number;
  /** Cells for circuit ids nobody registered (a relay's CREATE); default: close the link. */
  onUnknownCell?: (link: Link, cell: Cell) => void;
  /** Every payload received (after the PQ layer), for instrumentation. */
  onPayload?: (payload: Uint8Array) => void;
  /** A payload that has not reached the channel after this long kills the link (default {@link LINK_SEND_TIMEOUT_MS}). */
  sendTimeoutMs?: number;
}

/** Bytes a link moved, for metrics and the beacon-cost benchmark. */
export interface LinkStats {
  bytesIn: number;
  bytesOut: number;
  cellsIn: number;
  cellsOut: number;
  paddingOut: number;
}

/** One live link. Cells are sent in order; `close()` ends it cleanly, a failure ends it with `link-lost`. */
export class Link {
  /** The neighbour's authenticated Ed25519 key (a client's is a throwaway). */
  readonly peerKey: Uint8Array;
  readonly peerOnion: string;
  readonly initiator: boolean;
  readonly stats: LinkStats = { bytesIn: 0, bytesOut: 0, cellsIn: 0, cellsOut: 0, paddingOut: 0 };
  readonly #session: SecureSession;
  readonly #circuits = new Map<number, CircuitEnd>();
  readonly #options: LinkOptions;
  readonly #intervalMs: number;
  /** Encoded cells waiting, each one buffer or its parts (header first, see LayerKey.sealParts). */
  #queue: CellBytes[] = [];
  /** Each queued cell's length, in the same order. */
  #lengths: number[] = [];
  #queuedBytes = 0;
  readonly #queuedByCircuit = new Map<number, number>();
  #flushing = false;
  /** performance.now() when the payload being written was handed to the session; null when none is. */
  #writingSince: number | null = null;
  readonly #sendTimeoutMs: number;
  #closed: MeshError | null = null;
  /** performance.now() of the last payload handed to the channel (monotonic: a clock step is no silence). */
  #lastSent = performance.now();
  /** The neighbour's keepalive interval, from its PADDING (BFD's negotiated interval, RFC 5880 §6.8.2). */
  #peerIntervalMs: number | null = null;
  /** The tick's period: half an interval. */
  readonly #tickMs: number;
  readonly #silence: SilenceMeter;
  readonly #padding: Buffer;
  readonly #timer: NodeJS.Timeout;
  readonly #closeListeners = new Set<(e: MeshError) => void>();
  readonly #drainListeners = new Set<() => void>();

  constructor(session: SecureSession, initiator: boolean, options: LinkOptions = {}) {
    this.#session = session;
    this.peerKey = session.peer.publicKey;
    this.peerOnion = session.peer.onion;
    this.initiator = initiator;
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? LINK_SEND_TIMEOUT_MS;
    const interval = Buffer.alloc(4);
    interval.writeUInt32BE(Math.min(0xffff_ffff, Math.round(this.#intervalMs)));
    this.#padding = encodeCell(0, CMD_PADDING, interval);
    this.#tickMs = Math.max(10, Math.min(Math.floor(this.#intervalMs / 2), this.#sendTimeoutMs));
    this.#silence = new SilenceMeter(this.#tickMs, performance.now());
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    this.#timer.unref();
    void this.#readLoop();
    this.send(this.#padding); // tells the neighbour our interval at once
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Cells waiting to be written (all circuits). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Cells of one circuit waiting to be written. */
  queuedFor(circId: number): number {
    return this.#queuedByCircuit.get(circId) ?? 0;
  }

  /** A free circuit id in this side's half of the space (top bit set for the link's initiator). */
  allocCircId(): number {
    for (;;) {
      const id = (randomInt(1, 0x8000_0000) | (this.initiator ? 0x8000_0000 : 0)) >>> 0;
      if (!this.#circuits.has(id)) return id;
    }
  }

  /** Whether `id` is in the half of the id space the peer allocates from. */
  isPeerId(id: number): boolean {
    return id !== 0 && id >= 0x8000_0000 !== this.initiator;
  }

  register(circId: number, end: CircuitEnd): void {
    this.#circuits.set(circId, end);
  }

  unregister(circId: number): void {
    this.#circuits.delete(circId);
    this.#queuedByCircuit.delete(circId);
  }

  get circuitCount(): number {
    return this.#circuits.size;
  }

  onClose(listener: (e: MeshError) => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Called once the write queue is empty again. */
  onDrain(listener: () => void): () => void {
    this.#drainListeners.add(listener);
    return () => this.#drainListeners.delete(listener);
  }

  /**
   * Queues one encoded cell: one buffer, or its parts in order (the first holds at least the 5-byte header),
   * which go into the frame as they are. Throws `link-lost` once the link is closed.
   */
  send(cell: CellBytes, circId = 0): void {
    if (this.#closed) throw this.#closed;
    let length = 0;
    if (Array.isArray(cell)) for (const p of cell) length += p.length;
    else length = (cell as Buffer).length;
    this.#queue.push(cell);
    this.#lengths.push(length);
    this.#queuedBytes += length;
    if (circId !== 0) this.#queuedByCircuit.set(circId, (this.#queuedByCircuit.get(circId) ?? 0) + length);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        let size = 0;
        let n = 0;
        while (n < this.#queue.length && size + (this.#lengths[n] as number) <= MAX_LINK_PAYLOAD) {
          size += this.#lengths[n] as number;
          n++;
        }
        // the usual case, everything queued fits one frame: take the arrays themselves rather than copy them out
        let cells: CellBytes[];
        let lengths: number[];
        if (n === this.#queue.length) {
          cells = this.#queue;
          lengths = this.#lengths;
          this.#queue = [];
          this.#lengths = [];
        } else {
          cells = this.#queue.splice(0, n);
          lengths = this.#lengths.splice(0, n);
        }
        const batch: Uint8Array[] = [];
        for (let i = 0; i < cells.length; i++) {
          const c = cells[i] as CellBytes;
          let first: Buffer;
          if (Array.isArray(c)) {
            for (const p of c) batch.push(p);
            first = c[0] as Buffer;
          } else {
            batch.push(c as Buffer);
            first = c as Buffer;
          }
          const id = first.readUInt32BE(0);
          if (id !== 0) {
            // an entry lives until its circuit is unregistered: deleting it whenever the count reached 0 made
            // the map shrink and grow again (a reallocation) for nearly every cell of a lone exchange; a cell
            // sent after that (a DESTROY) finds no entry and counts for nothing
            const queued = this.#queuedByCircuit.get(id);
            if (queued !== undefined)
              this.#queuedByCircuit.set(id, Math.max(0, queued - (lengths[i] as number)));
          }
        }
        this.#queuedBytes -= size;
        this.stats.bytesOut += size + FRAME_OVERHEAD;
        this.stats.cellsOut += n;
        this.#lastSent = performance.now();
        // The cells go into one frame as they are (no join), and with no timer of the session's own: the
        // tick enforces the send deadline by aborting the session, which works on every channel (a socket's
        // write ignores a signal while it waits for 'drain').
        this.#writingSince = this.#lastSent;
        await this.#session.sendParts(batch, NO_SESSION_TIMER);
        this.#writingSince = null;
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#flushing = false;
      this.#writingSince = null;
    }
    if (!this.#closed) for (const l of this.#drainListeners) l();
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        // a view: the cells are parsed as views into it, the decrypted frame is copied never
        const payload = await this.#session.receive(AS_VIEW);
        if (payload === null) {
          this.#fail(new MeshError('link-lost', `link to ${this.peerOnion} closed by the peer`));
          return;
        }
        this.#silence.received(performance.now());
        this.stats.bytesIn += payload.length + FRAME_OVERHEAD;
        this.#options.onPayload?.(payload);
        const cells = parseCells(payload);
        this.stats.cellsIn += cells.length;
        for (const cell of cells) {
          if (this.#closed) return;
          if (cell.circId === 0) {
            // PADDING: its arrival was the point, and it carries the sender's interval
            const ms = Buffer.from(cell.body).readUInt32BE(0);
            if (ms >= 10 && ms <= 60_000) this.#peerIntervalMs = ms;
            continue;
          }
          const end = this.#circuits.get(cell.circId);
          try {
            if (end) end.onCell(cell);
            else if (this.#options.onUnknownCell) this.#options.onUnknownCell(this, cell);
          } catch (e) {
            // one circuit's failure is that circuit's (its owner tears it down), never its neighbours' on the link
            log('circuit %d on the link to %s: %s', cell.circId, this.peerOnion, (e as Error).message);
          }
        }
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  #tick(): void {
    // A late tick is a stall of this process, which the meter takes out of the neighbour's silence (see
    // SilenceMeter). The judgement runs after this turn's I/O (setImmediate runs after the poll phase), as of
    // the tick's time, so what arrived before the tick has been read.
    const at = performance.now();
    this.#silence.tick(at);
    setImmediate(() => this.#judge(at));
  }

  #judge(at: number): void {
    if (this.#closed) return;
    const writing = this.#writingSince;
    if (writing !== null && at - writing > this.#sendTimeoutMs) {
      // the neighbour stopped reading (or the path to it is stuck): every write has a deadline
      const err = new MeshError(
        'timeout',
        `link to ${this.peerOnion}: a write did not drain in ${Math.round(at - writing)} ms`,
      );
      this.#session.abort(err);
      this.#fail(err);
      return;
    }
    // silence is judged by the neighbour's interval (until it told us, the larger of ours and the default)
    const peer = this.#peerIntervalMs ?? Math.max(this.#intervalMs, DEFAULT_BEACON_INTERVAL_MS);
    const silent = this.#silence.silentMs(at);
    if (silent > LINK_DEAD_INTERVALS * peer) {
      const stalled = this.#silence.stalledSinceReceive;
      this.#fail(
        new MeshError(
          'timeout',
          `link to ${this.peerOnion} silent for ${Math.round(silent)} ms` +
            (stalled >= 1 ? ` (not counting ${Math.round(stalled)} ms this process was stalled)` : ''),
        ),
      );
      return;
    }
    // Keepalive: due once half a tick short of an interval passed with nothing sent, so a tick every half
    // interval sends one every interval (waiting for a full interval made it every 1.5 intervals, leaving the
    // neighbour's 3-interval rule only two keepalives of slack). Sent even when this tick came late: a
    // process that was stalled owes its neighbours a sign of life first of all.
    if (
      performance.now() - this.#lastSent >= this.#intervalMs - this.#tickMs / 2 &&
      this.#queue.length === 0
    ) {
      this.stats.paddingOut++;
      this.send(this.#padding);
    }
  }

  #fail(e: unknown): void {
    if (this.#closed) return;
    const err =
      e instanceof MeshError
        ? e
        : new MeshError('link-lost', `link to ${this.peerOnion} failed: ${(e as Error)?.message ?? e}`, {
            cause: e,
          });
    this.#closed = err;
    log('link to %s ends (%s): %s', this.peerOnion, err.reason, err.message);
    clearInterval(this.#timer);
    this.#queue = [];
    this.#lengths = [];
    this.#queuedBytes = 0;
    this.#queuedByCircuit.clear();
    // The session (and its channel) is torn down; a pending read or write rejects and is ignored.
    void this.#session.close().catch(() => {});
    const circuits = [...this.#circuits.values()];
    this.#circuits.clear();
    for (const c of circuits) {
      try {
        c.onLinkClosed(err);
      } catch (x) {
        log('circuit close handler threw: %s', x);
      }
    }
    for (const l of this.#closeListeners) l(err);
    this.#closeListeners.clear();
    this.#drainListeners.clear();
  }

  /** Ends the link (queued cells are dropped); circuits on it see `closed`. */
  close(): void {
    this.#fail(new MeshError('closed', `link to ${this.peerOnion} closed`));
  }
}

// ── opening links ───────────────────────────────────────────────────────────────────────────────────

/** Where a relay can be reached: its key (always) and, optionally, a direct TCP address. */
export interface RelayAddress {
  publicKey: Uint8Array;
  onion: string;
  tcp?: { host: string; port: number } | undefined;
}

/** Opens a byte channel to a relay by onion (a libp2p stream over tor); absent: onions are unreachable. */
export type OnionChannelDialer = (onion: string, options: { signal: AbortSignal }) => Promise<ByteChannel>;

export interface DialLinkOptions extends LinkOptions {
  /** The key this side authenticates with: a relay's identity, or a fresh one per link for a client. */
  self: AgentKey;
  onionDialer?: OnionChannelDialer | undefined;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Sockets of a link: no Nagle (cells are latency-sensitive; batching is ours). */
export function tuneSocket(socket: Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
}

/**
 * Dials a relay and runs the PQ handshake as initiator, proving nothing but `self` and requiring the relay to
 * prove `target.publicKey` (`ERR_HANDSHAKE` `wrong-identity` otherwise).
 */
export async function dialLink(target: RelayAddress, options: DialLinkOptions): Promise<Link> {
  const timeoutMs = options.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS;
  const what = `mesh link to ${target.onion}`;
  const signal = options.signal;
  let channel: ByteChannel;
  try {
    if (target.tcp) {
      const socket = await connect(target.tcp, { signal, timeoutMs, what });
      tuneSocket(socket);
      channel = channelFromDuplex(socket);
    } else if (options.onionDialer) {
      channel = await options.onionDialer(target.onion, { signal: withTimeout(signal, timeoutMs * 6, what) });
    } else {
      throw new MeshError('unreachable', `${what}: no TCP address and no tor to reach the onion`);
    }
  } catch (e) {
    if (e instanceof MmogitError) {
      if (e.code === 'ERR_TIMEOUT' || e.code === 'ERR_ABORTED' || e instanceof MeshError) throw e;
    }
    throw new MeshError('unreachable', `${what}: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  const session = await initiateSession(channel, options.self, {
    expectedPeer: target.onion,
    suites: ['hybrid-x25519-mlkem768'],
    ...(signal ? { signal } : {}),
    timeoutMs: target.tcp ? timeoutMs : timeoutMs * 6,
  });
  return new Link(session, true, options);
}

/** Accepts a link on an incoming channel (the relay proves `self`; the dialler's key is whatever it is). */
export async function acceptLink(
  channel: ByteChannel,
  self: AgentKey,
  options: LinkOptions & { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Link> {
  const session = await acceptSession(channel, self, {
    suites: ['hybrid-x25519-mlkem768'],
    ...(options.signal ? { signal: options.signal } : {}),
    timeoutMs: options.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS,
  });
  return new Link(session, false, options);
}
