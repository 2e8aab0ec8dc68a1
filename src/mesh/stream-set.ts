/**
 * The streams of one set (docs/protocol.md §8.5), shared by the client's and the exit's sets: the leg they use,
 * round-robin sending within the per-leg circuit window, DATA / END / SENDME dispatch, and the SWITCH entries
 * that let both ends resend from the other's offset.
 * @module
 */
import { createLogger } from '../_log.js';
import {
  CIRCUIT_SENDME_CELLS,
  CIRCUIT_WINDOW_CELLS,
  dataCellWeight,
  MAX_STREAMS_PER_SET,
  MSG_DATA,
  MSG_END,
  MSG_SENDME,
} from './_wire.js';
import { type RelayMessage, readU64, type SwitchEntry } from './cells.js';
import { MeshError } from './errors.js';
import type { Leg, MeshStream, StreamOwner } from './streams.js';

const log = createLogger('mmogit:mesh:stream');
const EMPTY = Buffer.alloc(0);

/**
 * The streams of one set and the leg they currently use. Subclasses (the client's and the exit's set) handle
 * the messages that open streams and move the set between legs; this class handles DATA, END and SENDMEs.
 */
export class StreamSet implements StreamOwner {
  readonly streams = new Map<number, MeshStream>();
  #active: Leg | null = null;
  /** While a SWITCH is unanswered nothing but control messages is sent. */
  paused = false;
  #pumpScheduled = false;
  #tailScheduled = false;
  #rr = 0;

  get active(): Leg | null {
    return this.#active;
  }

  setActive(leg: Leg | null): void {
    this.#active = leg;
  }

  /** Sends on the active leg; dropped (and recovered by the next SWITCH) when there is none. */
  send(cmd: number, stream: number, data: Uint8Array): boolean {
    const leg = this.#active;
    if (!leg?.alive) return false;
    try {
      leg.send(cmd, stream, data);
      return true;
    } catch (e) {
      log('send on a dying leg: %s', (e as Error).message);
      return false;
    }
  }

  add(stream: MeshStream): void {
    if (this.streams.size >= MAX_STREAMS_PER_SET) {
      throw new MeshError('resource-limit', `a set holds at most ${MAX_STREAMS_PER_SET} streams`);
    }
    this.streams.set(stream.id, stream);
  }

  remove(stream: MeshStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.onStreamRemoved(stream);
  }

  /** Hook: a stream left the set. */
  protected onStreamRemoved(_stream: MeshStream): void {}

  /** Sends what windows allow, soon (writes in one tick share cells). */
  schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Sends what the windows allow, round robin, one cell per stream per turn. Unless `partial`, streams keep
   * back a cell that would not be full (MeshStream.sendOne); one partial pump at `setImmediate` (after this
   * loop turn's I/O, so the socket reads already due are in) then sends whatever they hold.
   */
  pump(partial = false): void {
    const leg = this.#active;
    if (!leg?.alive || this.paused) return;
    const list = [...this.streams.values()];
    if (list.length === 0) return;
    let short = false;
    for (let progress = true; progress && leg.sendWindow > 0; ) {
      progress = false;
      short = false;
      for (let i = 0; i < list.length && leg.sendWindow > 0; i++) {
        const s = list[(this.#rr + i) % list.length] as MeshStream;
        if (s.sendOne(leg, partial)) progress = true;
        else if (s.holdsShort) short = true;
      }
      this.#rr++;
    }
    for (const s of list) s.afterPump();
    if (short && !this.#tailScheduled) {
      this.#tailScheduled = true;
      setImmediate(() => {
        this.#tailScheduled = false;
        this.pump(true);
      });
    }
  }

  /** Handles DATA, END and SENDME; returns false for other commands (the subclass's). */
  handleCommon(leg: Leg, msg: RelayMessage): boolean {
    switch (msg.cmd) {
      case MSG_DATA: {
        leg.receivedSinceSendme += dataCellWeight(msg.data.length);
        if (leg.receivedSinceSendme >= CIRCUIT_SENDME_CELLS) {
          leg.receivedSinceSendme -= CIRCUIT_SENDME_CELLS;
          try {
            leg.send(MSG_SENDME, 0, EMPTY);
          } catch {
            // the leg is going down; the next SWITCH resynchronises
          }
        }
        this.streams.get(msg.stream)?.onData(msg.data);
        return true;
      }
      case MSG_END:
        this.streams.get(msg.stream)?.onEnd(msg.data);
        return true;
      case MSG_SENDME:
        if (msg.stream === 0) {
          if (msg.data.length !== 0) throw new MeshError('protocol', 'circuit SENDME carries data');
          leg.sendWindow += CIRCUIT_SENDME_CELLS;
          if (leg.sendWindow > 4 * CIRCUIT_WINDOW_CELLS)
            throw new MeshError('protocol', 'circuit window overflow');
          this.schedulePump();
        } else {
          if (msg.data.length !== 8) throw new MeshError('protocol', 'SENDME has a bad length');
          this.streams.get(msg.stream)?.onSendme(readU64(msg.data, 0));
        }
        return true;
      default:
        return false;
    }
  }

  /** This side's SWITCH entries: what it has received of each stream. */
  switchEntries(): SwitchEntry[] {
    return [...this.streams.values()].map((s) => s.switchEntry());
  }

  /** Applies the peer's SWITCH/SWITCHED entries: each stream resends from what the peer has. */
  applyPeerEntries(entries: readonly SwitchEntry[]): void {
    for (const e of entries) this.streams.get(e.stream)?.rewind(e.received, e.endReceived);
    for (const s of this.streams.values()) s.resendAck();
  }

  /** Fails every stream (its exit is gone, or the set is closed). */
  failAll(error: MeshError): void {
    for (const s of [...this.streams.values()]) s.destroy(error);
  }
}
