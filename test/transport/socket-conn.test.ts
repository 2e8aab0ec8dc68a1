// Writes of the socket connection (src/transport/_socket-conn.ts): each frame reaches the socket as one write,
// the first of a tick at once, later ones of the same tick gathered into one write at the tick's end. Counted
// at the socket's own write methods (`_write` for one buffer, `_writev` for several: one syscall each).
import net from 'node:net';
import type { Logger } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { Uint8ArrayList } from 'uint8arraylist';
import { afterEach, describe, expect, it } from 'vitest';
import { socketToMaConn } from '../../src/transport/_socket-conn.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

function silentLogger(): Logger {
  const log: Logger = Object.assign(() => {}, {
    error: () => {},
    trace: () => {},
    enabled: false,
    newScope: () => log,
  });
  return log;
}

/** A connected loopback pair: our side wrapped, its writes counted; the bytes the other side reads. */
async function counted() {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const peer = await accepted;
  closers.push(() => {
    socket.destroy();
    peer.destroy();
    server.close();
  });
  const writes: number[] = []; // buffers per write call
  const s = socket as unknown as Record<string, (...a: unknown[]) => unknown>;
  const one = s._write?.bind(socket);
  const many = s._writev?.bind(socket);
  s._write = (chunk, enc, cb) => {
    writes.push(1);
    return one?.(chunk, enc, cb);
  };
  s._writev = (chunks, cb) => {
    writes.push((chunks as unknown[]).length);
    return many?.(chunks, cb);
  };
  let received = 0;
  peer.on('data', (d: Buffer) => {
    received += d.length;
  });
  const conn = socketToMaConn({
    socket,
    remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1'),
    direction: 'outbound',
    log: silentLogger(),
  });
  return { conn, writes, received: () => received };
}

/** A frame as noise hands it over: its 2-byte length and its ciphertext as separate buffers. */
const frame = (n: number) => new Uint8ArrayList(Uint8Array.of(n >> 8, n & 0xff), new Uint8Array(n).fill(7));

describe('socket connection writes', () => {
  it('a frame of several buffers reaches the socket as one write, at once', async () => {
    const { conn, writes, received } = await counted();
    conn.send(frame(100));
    // synchronously: before any tick or promise callback could run
    expect(writes).toEqual([2]);
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toEqual([2]);
    expect(received()).toBe(102);
  });

  it('frames sent later in the same tick are gathered into one write at its end', async () => {
    const { conn, writes, received } = await counted();
    for (let i = 0; i < 10; i++) conn.send(frame(50));
    expect(writes).toEqual([2]);
    await new Promise((r) => process.nextTick(r));
    expect(writes).toEqual([2, 18]);
    // the next tick's first frame goes out at once again
    conn.send(frame(10));
    expect(writes).toEqual([2, 18, 2]);
    await new Promise((r) => setTimeout(r, 50));
    expect(received()).toBe(10 * 52 + 12);
  });
});
