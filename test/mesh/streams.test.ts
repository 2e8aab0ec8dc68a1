import { describe, expect, it } from 'vitest';
import { CIRCUIT_WINDOW_CELLS, dataCellWeight, MSG_DATA } from '../../src/mesh/_wire.js';
import { dataLength, type MessageData } from '../../src/mesh/cells.js';
import {
  DATA_CHUNK,
  DATA_CHUNK_LARGE,
  type Leg,
  MeshStream,
  type StreamOwner,
} from '../../src/mesh/streams.js';

/** A leg that records each DATA cell's stream bytes (the 8-byte offset prefix not counted). */
function recordingLeg(): Leg & { cells: number[] } {
  const cells: number[] = [];
  return {
    cells,
    alive: true,
    sendWindow: CIRCUIT_WINDOW_CELLS,
    receivedSinceSendme: 0,
    send(cmd: number, _stream: number, data: MessageData) {
      if (cmd === MSG_DATA) cells.push(dataLength(data));
    },
  };
}

const owner: StreamOwner = { send: () => true, schedulePump: () => {}, remove: () => {} };

describe('mesh stream cells', () => {
  it('sends 64 KiB-class cells only full: the rest waits for a partial pump and goes in 16 KiB cells', async () => {
    const s = new MeshStream(owner, 1, true);
    const leg = recordingLeg();
    s.write(Buffer.alloc(200_000, 1));
    await new Promise((r) => setImmediate(r));
    while (s.sendOne(leg, false)) {}
    expect(leg.cells).toEqual([DATA_CHUNK_LARGE, DATA_CHUNK_LARGE, DATA_CHUNK_LARGE]);
    expect(s.holdsShort).toBe(true);
    while (s.sendOne(leg, true)) {}
    const rest = 200_000 - 3 * DATA_CHUNK_LARGE;
    expect(leg.cells.slice(3)).toEqual([rest]);
    expect(rest).toBeLessThanOrEqual(DATA_CHUNK);
    // the circuit window counts a 64 KiB-class cell as 4
    expect(leg.sendWindow).toBe(CIRCUIT_WINDOW_CELLS - 3 * 4 - 1);
    expect(dataCellWeight(8 + DATA_CHUNK_LARGE)).toBe(4);
    s.destroy();
  });

  it('does not hold back when the circuit window has no room for a 64 KiB-class cell', async () => {
    const s = new MeshStream(owner, 1, true);
    const leg = recordingLeg();
    leg.sendWindow = 3;
    s.write(Buffer.alloc(100_000, 1));
    await new Promise((r) => setImmediate(r));
    while (leg.sendWindow > 0 && s.sendOne(leg, false)) {}
    expect(leg.cells).toEqual([DATA_CHUNK, DATA_CHUNK, DATA_CHUNK]);
    s.destroy();
  });

  it('joins many small writes into one part rather than sealing each', async () => {
    const s = new MeshStream(owner, 1, true);
    const parts: number[] = [];
    const leg: Leg = {
      alive: true,
      sendWindow: CIRCUIT_WINDOW_CELLS,
      receivedSinceSendme: 0,
      send(cmd: number, _stream: number, data: MessageData) {
        if (cmd === MSG_DATA) parts.push(Array.isArray(data) ? data.length : 1);
      },
    };
    s.cork();
    for (let i = 0; i < 100; i++) s.write(Buffer.alloc(10, i));
    s.uncork();
    await new Promise((r) => setImmediate(r));
    while (s.sendOne(leg, true)) {}
    expect(parts).toEqual([1]);
    s.destroy();
  });
});
