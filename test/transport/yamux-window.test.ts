// The yamux window rule (src/transport/_yamux-window.ts) on the wire: two real yamux muxers over real loopback
// TCP (no encryption, so a relay between them can read every frame header), counting the WINDOW_UPDATE frames
// the receiving side sends. Frame header: yamux spec (hashicorp/yamux spec.md, "Framing"): version, type,
// flags (2 bytes), stream id (4), length (4), big-endian; type 1 is Window Update, and a data frame's payload
// follows its header.
import '../../src/_polyfill.js';
import net from 'node:net';
import { yamux } from '@chainsafe/libp2p-yamux';
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import type { Logger, Stream, StreamMuxerFactory } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { socketToMaConn } from '../../src/transport/_socket-conn.js';
import {
  checkYamux,
  halfWindowYamux,
  installedYamuxVersion,
  YAMUX_PATCHED_VERSION,
} from '../../src/transport/_yamux-window.js';

const WINDOW_UPDATE = 1;
const HEADER = 12;

function silentLogger(): Logger {
  const log: Logger = Object.assign(() => {}, {
    error: () => {},
    trace: () => {},
    enabled: false,
    newScope: () => log,
  });
  return log;
}

/** Counts the frames in one direction of a byte stream, across chunk boundaries. */
class FrameCounter {
  private buf = Buffer.alloc(0);
  /** WINDOW_UPDATE frames with no flags, per stream id. */
  readonly updates = new Map<number, number>();
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < HEADER) return;
      const type = this.buf[1] as number;
      const flags = this.buf.readUInt16BE(2);
      const id = this.buf.readUInt32BE(4);
      const length = this.buf.readUInt32BE(8);
      const size = type === 0 ? HEADER + length : HEADER;
      if (this.buf.length < size) return;
      if (type === WINDOW_UPDATE && flags === 0) this.updates.set(id, (this.updates.get(id) ?? 0) + 1);
      this.buf = this.buf.subarray(size);
    }
  }
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * A dialer muxer and a listener muxer made by `make`, over 127.0.0.1 through a relay that counts the frames the
 * listener sends back. Resolves with the dialer's outbound stream and the listener's inbound one.
 */
async function streamPair(make: () => StreamMuxerFactory) {
  const back = new FrameCounter();
  const listen = async (server: net.Server): Promise<number> => {
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as net.AddressInfo).port;
  };
  let onInbound: (s: net.Socket) => void = () => {};
  const inbound = new Promise<net.Socket>((resolve) => {
    onInbound = resolve;
  });
  const target = await listen(net.createServer((s) => onInbound(s)));
  const relayPort = await listen(
    net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      client.pipe(upstream);
      upstream.on('data', (d: Buffer) => back.push(d));
      upstream.pipe(client);
      closers.push(() => {
        client.destroy();
        upstream.destroy();
      });
    }),
  );
  const dialSocket = net.connect(relayPort, '127.0.0.1');
  await new Promise<void>((r) => dialSocket.once('connect', () => r()));
  const listenSocket = await inbound;
  const addr = multiaddr('/ip4/127.0.0.1/tcp/1');
  const dialer = make().createStreamMuxer(
    socketToMaConn({ socket: dialSocket, remoteAddr: addr, direction: 'outbound', log: silentLogger() }),
  );
  const listener = make().createStreamMuxer(
    socketToMaConn({ socket: listenSocket, remoteAddr: addr, direction: 'inbound', log: silentLogger() }),
  );
  closers.push(() => {
    dialer.abort(new Error('test over'));
    listener.abort(new Error('test over'));
  });
  const accepted = new Promise<Stream>((resolve) =>
    listener.addEventListener('stream', (evt) => resolve(evt.detail), { once: true }),
  );
  const out = await dialer.createStream();
  out.send(new Uint8Array([0])); // the SYN goes out with the first data frame
  const served = await accepted;
  return { out, served, updates: () => back.updates.get(Number(out.id)) ?? 0 };
}

/** Sends `count` messages of `size` bytes one at a time, each after the previous one was read. */
async function pingPong(out: Stream, served: Stream, count: number, size: number): Promise<void> {
  let got = 0;
  let want = 1; // the SYN's byte
  let wake: (() => void) | undefined;
  served.addEventListener('message', (evt) => {
    got += evt.data.byteLength;
    if (got >= want) wake?.();
  });
  const reached = (n: number) =>
    new Promise<void>((resolve) => {
      want = n;
      wake = resolve;
      if (got >= n) resolve();
    });
  await reached(1);
  for (let i = 0; i < count; i++) {
    if (!out.send(new Uint8Array(size).fill(i & 0xff))) await out.onDrain();
    await reached(1 + (i + 1) * size);
  }
  // One byte back: it reaches the dialer after every frame the listener sent before it, updates included.
  const echoed = new Promise<void>((resolve) =>
    out.addEventListener('message', () => resolve(), { once: true }),
  );
  served.send(new Uint8Array([1]));
  await echoed;
}

describe('yamux window updates', () => {
  it('the package alone sends one WINDOW_UPDATE per data frame received (what the rule exists for)', async () => {
    const { out, served, updates } = await streamPair(yamux());
    await pingPong(out, served, 50, 200);
    expect(updates()).toBeGreaterThanOrEqual(50);
  });

  it('our muxers send none until half the window is used, and keep big transfers flowing', async () => {
    const window = 256 * 1024; // the smallest the package allows
    const make = halfWindowYamux({
      streamOptions: { initialStreamWindowSize: window, maxStreamWindowSize: window },
    });
    const small = await streamPair(make);
    await pingPong(small.out, small.served, 50, 200); // 10 KB: under half the window
    expect(small.updates()).toBe(0);

    // 4 MiB through a 256 KiB window needs updates: about one per half window, never one per frame
    const big = await streamPair(make);
    const total = 256 * 16 * 1024;
    await pingPong(big.out, big.served, 256, 16 * 1024);
    expect(big.updates()).toBeGreaterThanOrEqual(total / window);
    expect(big.updates()).toBeLessThanOrEqual((2 * total) / window + 2);
  });

  it('changes only its own muxers: the shared prototype and a plain yamux() keep the package behaviour', async () => {
    const ours = await streamPair(halfWindowYamux());
    await pingPong(ours.out, ours.served, 20, 100);
    expect(ours.updates()).toBe(0);
    expect(Object.hasOwn(YamuxStream.prototype, '__mmogitHalfWindow')).toBe(false);
    const plain = await streamPair(yamux());
    await pingPong(plain.out, plain.served, 20, 100);
    expect(plain.updates()).toBeGreaterThanOrEqual(20);
  });

  it('is written for the installed version and checks it', () => {
    expect(installedYamuxVersion()).toBe(YAMUX_PATCHED_VERSION);
    expect(() => checkYamux()).not.toThrow();
  });
});
