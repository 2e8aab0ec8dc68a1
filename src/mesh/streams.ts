/**
 * One stream end between a client and an exit (docs/protocol.md §8.5), the same at both ends: byte offsets,
 * the stream window, retransmission after a SWITCH (tor's conflux, proposal 329: a stream continues on another
 * leg to the same exit with no byte lost or repeated) and half-close. Its set (stream-set.ts) owns the legs.
 *
 * A {@link MeshStream} is a Node Duplex: what the application writes is sent as DATA cells while the window
 * allows (a full window holds the writer's callback); what arrives is pushed to the readable side, and a
 * SENDME goes back only once the reader took the bytes, so a slow reader stops the sender and no one in
 * between buffers more than a window.
 * @module
 */
import { Duplex } from 'node:stream';
import { createLogger } from '../_log.js';
import {
  CIRCUIT_WINDOW_CELLS,
  dataCellWeight,
  MSG_DATA,
  MSG_END,
  MSG_SENDME,
  messageCapacity,
  reasonByte,
  reasonOf,
  STREAM_SENDME_BYTES,
  STREAM_WINDOW,
} from './_wire.js';
import { encodeEnd, type MessageData, parseData, parseEnd, type SwitchEntry, u64 } from './cells.js';
import { MeshError } from './errors.js';

const log = createLogger('mmogit:mesh:stream');
/** Most stream bytes in one DATA cell of the 16 KiB class (minus the 8-byte offset). */
export const DATA_CHUNK = messageCapacity(16384) - 8;
/**
 * Stream bytes of a 64 KiB-class DATA cell, which is only ever sent full: a stream with at least this much to
 * send (and window for it) sends it in one such cell, anything less goes in the smallest class that fits, so no
 * cell is padded more than before that class existed.
 */
export const DATA_CHUNK_LARGE = messageCapacity(65520) - 8;
const _EMPTY = Buffer.alloc(0);
/** Most parts one DATA cell's bytes are sealed from before they are joined (see MeshStream's #take). */
const MAX_DATA_PARTS = 8;

/** A circuit as one end of a set sees it. */
export interface Leg {
  readonly alive: boolean;
  /** Sends one relay message to the other end of the set (the exit, or the client); `prefix` goes first. */
  send(cmd: number, stream: number, data: MessageData, prefix?: Uint8Array): void;
  /** DATA cells this leg may still send before the peer's next circuit SENDME. */
  sendWindow: number;
  /** DATA cells received on this leg since the last circuit SENDME we sent. */
  receivedSinceSendme: number;
}

/** Fresh window fields for a new leg. */
export function legWindows(): Pick<Leg, 'sendWindow' | 'receivedSinceSendme'> {
  return { sendWindow: CIRCUIT_WINDOW_CELLS, receivedSinceSendme: 0 };
}

/** What a stream needs of the set it belongs to (src/mesh/stream-set.ts). */
export interface StreamOwner {
  /** Sends on the set's active leg; false when there is none (recovered by the next SWITCH). */
  send(cmd: number, stream: number, data: Uint8Array): boolean;
  /** Sends what windows allow, soon. */
  schedulePump(): void;
  /** The stream left (both ENDs acknowledged, or destroyed). */
  remove(stream: MeshStream): void;
}

interface Unacked {
  offset: number;
  bytes: Buffer;
}

/** One stream end. `ready` is false until the stream is connected (the client waits for CONNECTED). */
export class MeshStream extends Duplex {
  readonly id: number;
  readonly #set: StreamOwner;
  ready: boolean;
  // sending
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #unacked: Unacked[] = [];
  #unackedBytes = 0;
  #sendOffset = 0;
  #acked = 0;
  #endRequested = false;
  #endSent = false;
  #writeCallback: ((e?: Error | null) => void) | null = null;
  // receiving
  #received = 0;
  #lastSendme = 0;
  #remoteFinal: number | null = null;
  #pushedEnd = false;
  #finalAckSent = false;
  #done = false;
  /** The last {@link sendOne} held back a short cell (to be sent by a partial pump). */
  holdsShort = false;
  /** The last DATA cell sent was a full 64 KiB-class one. */
  #bulk = false;
  /** First DATA after a SWITCH: observers (the client's failover timing) hook here. */
  onFirstData: (() => void) | null = null;

  constructor(set: StreamOwner, id: number, ready: boolean) {
    // autoDestroy off: the stream lives until both ENDs are acknowledged, not merely until both sides ended
    super({
      readableHighWaterMark: 256 * 1024,
      writableHighWaterMark: 256 * 1024,
      allowHalfOpen: true,
      autoDestroy: false,
    });
    this.#set = set;
    this.id = id;
    this.ready = ready;
    // The final SENDME goes once the reader took the last byte. Bytes still buffered when the peer's END came
    // (a reader that was paused, as a pipe is while its socket drains) are taken without a `_read` call (none
    // comes after the end was pushed): 'end' is the one sign that they were.
    this.once('end', () => this.#maybeAck());
  }

  /** Bytes of the peer's direction received so far. */
  get received(): number {
    return this.#received;
  }

  /** Bytes handed to the application (pushed and read). */
  get consumed(): number {
    return this.#received - this.readableLength;
  }

  get sentOffset(): number {
    return this.#sendOffset;
  }

  // ── Duplex ────────────────────────────────────────────────────────────────────────────────────────
  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (e?: Error | null) => void): void {
    if (chunk.length > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
    }
    this.#set.schedulePump();
    if (this.#unackedBytes + this.#pendingBytes < STREAM_WINDOW) callback();
    else this.#writeCallback = callback;
  }

  override _final(callback: (e?: Error | null) => void): void {
    this.#endRequested = true;
    this.#set.schedulePump();
    callback();
  }

  override _read(): void {
    this.#maybeAck();
  }

  override _destroy(error: Error | null, callback: (e?: Error | null) => void): void {
    if (error) log('stream %d: %s', this.id, error.message);
    if (!this.#done) {
      this.#done = true;
      // an unclean end (local error or abort) resets the peer's side
      this.#set.send(MSG_END, this.id, encodeEnd(reasonByte('reset'), this.#sendOffset));
    }
    this.#release(error);
    this.#set.remove(this);
    callback(error);
  }

  // ── sending ───────────────────────────────────────────────────────────────────────────────────────
  /**
   * Sends at most one cell on `leg`; true if it did. Unless `partial`, a stream in bulk that could fill a
   * 64 KiB-class cell but has less pending sends nothing and sets {@link holdsShort}: its set flushes it after
   * this turn's I/O (see StreamSet.pump), so the socket reads of one turn share cells instead of each read's
   * tail going out in a cell of its own.
   */
  sendOne(leg: Leg, partial = true): boolean {
    this.holdsShort = false;
    if (!this.ready || this.#done) return false;
    if (this.#pendingBytes > 0 && this.#sendOffset - this.#acked < STREAM_WINDOW) {
      const window = STREAM_WINDOW - (this.#sendOffset - this.#acked);
      // a full 64 KiB-class cell when there is that much to send and the windows allow it, else a 16 KiB one
      const largeFits = window >= DATA_CHUNK_LARGE && leg.sendWindow >= 4;
      const large = largeFits && this.#pendingBytes >= DATA_CHUNK_LARGE;
      // held back only in bulk (16 KiB or more pending, or the tail after a full cell): a lone short write,
      // as a request or an echo, goes at once, with no turn of delay
      if (largeFits && !large && !partial && (this.#bulk || this.#pendingBytes >= DATA_CHUNK)) {
        this.holdsShort = true;
        return false;
      }
      this.#bulk = large;
      const parts = this.#take(large ? DATA_CHUNK_LARGE : Math.min(DATA_CHUNK, window));
      leg.send(MSG_DATA, this.id, parts, u64(this.#sendOffset));
      let n = 0;
      for (const bytes of parts) {
        this.#unacked.push({ offset: this.#sendOffset + n, bytes });
        n += bytes.length;
      }
      leg.sendWindow -= dataCellWeight(8 + n);
      this.#unackedBytes += n;
      this.#sendOffset += n;
      return true;
    }
    if (this.#pendingBytes === 0 && this.#endRequested && !this.#endSent) {
      this.#endSent = true;
      leg.send(MSG_END, this.id, encodeEnd(reasonByte('done'), this.#sendOffset));
    }
    return false;
  }

  afterPump(): void {
    const cb = this.#writeCallback;
    if (cb && this.#unackedBytes + this.#pendingBytes < STREAM_WINDOW) {
      this.#writeCallback = null;
      cb();
    }
  }

  /**
   * Up to `max` pending bytes as the parts they lie in (views, never joined: the cell is sealed part by part,
   * and a socket's 64 KiB reads do not line up with cells, so joining copied nearly every large cell).
   */
  #take(max: number): Buffer[] {
    const parts: Buffer[] = [];
    let n = 0;
    while (n < max && this.#pending.length > 0) {
      const head = this.#pending[0] as Buffer;
      if (n + head.length <= max) {
        this.#pending.shift();
        parts.push(head);
        n += head.length;
      } else {
        parts.push(head.subarray(0, max - n));
        this.#pending[0] = head.subarray(max - n);
        n = max;
      }
    }
    this.#pendingBytes -= n;
    // many small writes: one joined part (a copy of at most one cell), not a GCM pass per write
    return parts.length > MAX_DATA_PARTS ? [Buffer.concat(parts, n)] : parts;
  }

  onSendme(consumed: number): void {
    if (consumed > this.#sendOffset) {
      this.destroy(new MeshError('protocol', `stream ${this.id}: peer acknowledged bytes never sent`));
      return;
    }
    if (consumed <= this.#acked) return;
    this.#acked = consumed;
    while (this.#unacked.length > 0) {
      const u = this.#unacked[0] as Unacked;
      if (u.offset + u.bytes.length > consumed) break;
      this.#unacked.shift();
      this.#unackedBytes -= u.bytes.length;
    }
    this.#set.schedulePump();
    this.#maybeFinish();
  }

  /** After a SWITCH: the peer has `received` bytes; resend everything after them (and END if it missed it). */
  rewind(received: number, endReceived: boolean): void {
    if (received > this.#sendOffset || received < this.#acked) {
      this.destroy(
        new MeshError('protocol', `stream ${this.id}: peer reports offset ${received} out of range`),
      );
      return;
    }
    const back: Buffer[] = [];
    const keep: Unacked[] = [];
    for (const u of this.#unacked) {
      const end = u.offset + u.bytes.length;
      if (end <= received) keep.push(u);
      else if (u.offset >= received) back.push(u.bytes);
      else {
        keep.push({ offset: u.offset, bytes: u.bytes.subarray(0, received - u.offset) });
        back.push(u.bytes.subarray(received - u.offset));
      }
    }
    let moved = 0;
    for (const b of back) moved += b.length;
    this.#unacked = keep;
    this.#unackedBytes -= moved;
    this.#pending = [...back, ...this.#pending];
    this.#pendingBytes += moved;
    this.#sendOffset = received;
    if (this.#endSent && !endReceived) this.#endSent = false;
    this.#set.schedulePump();
  }

  // ── receiving ─────────────────────────────────────────────────────────────────────────────────────
  onData(data: Uint8Array): void {
    if (this.#done) return;
    const { offset, bytes } = parseData(data);
    if (offset > this.#received) {
      this.destroy(
        new MeshError('protocol', `stream ${this.id}: data at ${offset}, expected ${this.#received}`),
      );
      return;
    }
    const skip = this.#received - offset;
    if (skip >= bytes.length) return; // already have it (resent after a SWITCH)
    if (this.#remoteFinal !== null && offset + bytes.length > this.#remoteFinal) {
      this.destroy(new MeshError('protocol', `stream ${this.id}: data past the peer's END`));
      return;
    }
    const fresh = skip > 0 ? bytes.subarray(skip) : bytes;
    this.#received += fresh.length;
    const hook = this.onFirstData;
    if (hook) {
      this.onFirstData = null;
      hook();
    }
    this.push(fresh);
    this.#maybeEndReadable();
    this.#maybeAck();
  }

  onEnd(data: Uint8Array): void {
    if (this.#done) return;
    const { reason, finalOffset } = parseEnd(data);
    if (reason !== 0) {
      const r = reasonOf(reason);
      this.destroyQuietly(
        new MeshError(
          r,
          `stream ${this.id} ${r === 'exit-policy' ? 'refused by the exit policy' : `reset (${r})`}`,
        ),
      );
      return;
    }
    if (finalOffset < this.#received) {
      this.destroy(new MeshError('protocol', `stream ${this.id}: END before data already received`));
      return;
    }
    this.#remoteFinal = finalOffset;
    this.#maybeEndReadable();
    this.#maybeAck();
  }

  #maybeEndReadable(): void {
    if (!this.#pushedEnd && this.#remoteFinal !== null && this.#received === this.#remoteFinal) {
      this.#pushedEnd = true;
      this.push(null);
    }
  }

  #maybeAck(): void {
    if (this.#done) return;
    const consumed = this.consumed;
    const all = this.#remoteFinal !== null && consumed === this.#remoteFinal;
    if (
      consumed - this.#lastSendme >= STREAM_SENDME_BYTES ||
      (all && !this.#finalAckSent && consumed > this.#lastSendme)
    ) {
      this.#lastSendme = consumed;
      this.#set.send(MSG_SENDME, this.id, u64(consumed));
    }
    if (all) {
      this.#finalAckSent = true;
      this.#maybeFinish();
    }
  }

  /** After a SWITCH, tells the peer (again) how much was consumed. */
  resendAck(): void {
    if (this.#done) return;
    this.#lastSendme = this.consumed;
    this.#set.send(MSG_SENDME, this.id, u64(this.#lastSendme));
  }

  switchEntry(): SwitchEntry {
    return { stream: this.id, received: this.#received, endReceived: this.#remoteFinal !== null };
  }

  /** Both directions ended and were acknowledged: the stream leaves its set. */
  #maybeFinish(): void {
    if (this.#done) return;
    const sentAll = this.#endSent && this.#acked === this.#sendOffset;
    const gotAll = this.#remoteFinal !== null && this.#finalAckSent;
    if (sentAll && gotAll) {
      this.#done = true;
      this.destroy();
    }
  }

  /** Fails the stream without sending END (the peer sent one, or there is no path to it). */
  destroyQuietly(error: Error): void {
    this.#done = true;
    this.destroy(error);
  }

  #release(error: Error | null): void {
    this.#pending = [];
    this.#unacked = [];
    this.#pendingBytes = 0;
    this.#unackedBytes = 0;
    const cb = this.#writeCallback;
    this.#writeCallback = null;
    cb?.(error);
  }
}
