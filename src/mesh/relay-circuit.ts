/**
 * One circuit as a relay holds it (docs/mesh.md §Circuits): its two neighbours, its layer keys, the exit set it
 * joined, its circuit window; as an exit leg, it seals messages to the client under its backward layer.
 * @module
 */
import { CELL_HEADER_LEN } from './_wire.js';
import { cellHead, classFor, dataLength, type MessageData, messageParts } from './cells.js';
import { MeshError } from './errors.js';
import type { ExitLeg, ExitSet } from './exit.js';
import type { HopLayers } from './layers.js';
import type { CellBytes, Link } from './link.js';
import { legWindows } from './streams.js';

/** What a circuit needs of its relay: a cell queued towards one neighbour (the relay bounds the queue). */
export interface CellSender {
  sendCell(circ: RelayCircuit, side: Side, cell: CellBytes): void;
}

/** One neighbour of a circuit: the link and the circuit's id on it. */
export interface Side {
  link: Link;
  id: number;
}

/** One circuit through a relay. */
export class RelayCircuit implements ExitLeg {
  readonly prev: Side;
  next: Side | null = null;
  readonly layers: HopLayers;
  set: ExitSet | null = null;
  sendWindow = legWindows().sendWindow;
  receivedSinceSendme = 0;
  extending: { timer: NodeJS.Timeout } | null = null;
  closed = false;

  constructor(
    readonly relay: CellSender,
    prev: Side,
    layers: HopLayers,
  ) {
    this.prev = prev;
    this.layers = layers;
  }

  get alive(): boolean {
    return !this.closed;
  }

  /** As an exit leg: a message to the client. */
  send(cmd: number, stream: number, data: MessageData, prefix?: Uint8Array): void {
    if (this.closed) throw new MeshError('closed', 'circuit closed');
    const [relayCmd, len] = classFor(dataLength(data) + (prefix?.length ?? 0));
    // sealed as parts (header, data, padding): the data is encrypted where it lies, never copied into a cell
    const cell = this.layers.backward.sealParts(
      messageParts(len, cmd, stream, data, prefix),
      cellHead(this.prev.id, relayCmd),
      CELL_HEADER_LEN,
    );
    this.relay.sendCell(this, this.prev, cell);
  }
}
