// Real loopback plumbing for the pqc tests: a TCP listener, a connected channel pair, and a TCP relay that can
// record, change, inject or cut bytes (a man in the middle on 127.0.0.1).
import net from 'node:net';
import { type ByteChannel, channelFromDuplex } from '../../src/transport/byte-channel.js';

export interface Listener {
  port: number;
  next(): Promise<net.Socket>;
  close(): Promise<void>;
}

/** net.createServer on 127.0.0.1:0; `next()` resolves with the next accepted socket. */
export async function listen(): Promise<Listener> {
  const queue: net.Socket[] = [];
  const waiters: ((s: net.Socket) => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const w = waiters.shift();
    if (w) w(s);
    else queue.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const next = () =>
    new Promise<net.Socket>((resolve) => {
      const s = queue.shift();
      if (s) resolve(s);
      else waiters.push(resolve);
    });
  return {
    port,
    next,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

export interface ChannelPair {
  client: ByteChannel;
  server: ByteChannel;
  clientSocket: net.Socket;
  serverSocket: net.Socket;
  close(): Promise<void>;
}

/** A connected pair of channels over a real loopback TCP connection (optionally to `port`, e.g. a relay). */
export async function channelPair(listener?: Listener, port?: number): Promise<ChannelPair> {
  const own = listener ?? (await listen());
  const accepted = own.next();
  const clientSocket = await connect(port ?? own.port);
  const serverSocket = await accepted;
  return {
    client: channelFromDuplex(clientSocket),
    server: channelFromDuplex(serverSocket),
    clientSocket,
    serverSocket,
    close: async () => {
      clientSocket.destroy();
      serverSocket.destroy();
      if (!listener) await own.close();
    },
  };
}

export type Direction = 'c2s' | 's2c';

export interface RelayHooks {
  /** Sees every chunk with its absolute stream offset; returns the bytes to forward (may differ in length). */
  transform?: (dir: Direction, chunk: Buffer, offset: number) => Uint8Array;
  /** Stop forwarding in `dir` after this many bytes and end both sockets (a cut connection). */
  cutAfter?: Partial<Record<Direction, number>>;
}

export interface Relay {
  port: number;
  /** Every byte that went through, per direction, before transforms. */
  recorded: Record<Direction, Buffer[]>;
  bytes(dir: Direction): Buffer;
  /** Writes extra bytes into the stream toward the server (c2s) or client (s2c). */
  inject(dir: Direction, bytes: Uint8Array): void;
  close(): Promise<void>;
}

/** A TCP relay 127.0.0.1:<port> → 127.0.0.1:<targetPort> for one connection. */
export async function relay(targetPort: number, hooks: RelayHooks = {}): Promise<Relay> {
  const recorded: Record<Direction, Buffer[]> = { c2s: [], s2c: [] };
  const offsets: Record<Direction, number> = { c2s: 0, s2c: 0 };
  let up: net.Socket | null = null;
  let down: net.Socket | null = null;
  const server = net.createServer((client) => {
    down = client;
    client.on('error', () => {});
    const upstream = net.connect(targetPort, '127.0.0.1');
    up = upstream;
    upstream.on('error', () => {});
    const pipe = (dir: Direction, from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => {
        recorded[dir].push(Buffer.from(chunk));
        const offset = offsets[dir];
        offsets[dir] += chunk.length;
        let out: Uint8Array = hooks.transform ? hooks.transform(dir, chunk, offset) : chunk;
        const limit = hooks.cutAfter?.[dir];
        if (limit !== undefined && offset + chunk.length >= limit) {
          out = out.subarray(0, Math.max(0, limit - offset));
          to.end(out);
          from.destroy();
          return;
        }
        to.write(out);
      });
      from.on('end', () => to.end());
      from.on('close', () => to.destroy());
    };
    pipe('c2s', client, upstream);
    pipe('s2c', upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    recorded,
    bytes: (dir) => Buffer.concat(recorded[dir]),
    inject: (dir, bytes) => {
      const to = dir === 'c2s' ? up : down;
      to?.write(bytes);
    },
    close: () =>
      new Promise<void>((resolve) => {
        (up as net.Socket | null)?.destroy();
        (down as net.Socket | null)?.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Flips one bit of the byte at absolute offset `at` in direction `dir`. */
export function flipAt(dir: Direction, at: number): RelayHooks['transform'] {
  return (d, chunk, offset) => {
    if (d !== dir || at < offset || at >= offset + chunk.length) return chunk;
    const copy = Buffer.from(chunk);
    copy[at - offset] = (copy[at - offset] as number) ^ 0x01;
    return copy;
  };
}

/** Settles a promise into { ok, value | error } so tests can inspect both sides of a handshake. */
export async function settle<T>(
  p: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

export interface RelayedPair extends ChannelPair {
  relay: Relay;
}

/** client ⇄ relay ⇄ server, all real loopback TCP. */
export async function relayedPair(hooks: RelayHooks = {}): Promise<RelayedPair> {
  const listener = await listen();
  const r = await relay(listener.port, hooks);
  const pair = await channelPair(listener, r.port);
  return {
    ...pair,
    relay: r,
    close: async () => {
      await pair.close();
      await r.close();
      await listener.close();
    },
  };
}
