/**
 * A SOCKS5 server on loopback (RFC 1928; no authentication, CONNECT only) whose streams go through the mesh.
 * `mmogit mesh socks` runs it; `curl -x socks5h://127.0.0.1:10809 …` is a client we did not write. Addresses
 * are passed to the exit unresolved (ATYP 3), so names are never looked up here.
 * @module
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import { MeshError } from './errors.js';
import type { MeshStream } from './streams.js';

const log = createLogger('mmogit:mesh:socks');
/** The seed's port. */
export const DEFAULT_SOCKS_PORT = 10809;
/** Whole SOCKS negotiation deadline (greeting to reply). */
export const SOCKS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Greeting and request are far below this (RFC 1928: ≤ 2 + 255 and ≤ 6 + 256 bytes). */
const MAX_SOCKS_BYTES = 600;

/** RFC 1928 §6 reply codes. */
export const SOCKS_REPLY = {
  ok: 0x00,
  failure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  refused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressNotSupported: 0x08,
} as const;

/** The reply code for a failed mesh connect. */
export function replyFor(e: unknown): number {
  if (!(e instanceof MeshError)) return SOCKS_REPLY.failure;
  switch (e.reason) {
    case 'exit-policy':
      return SOCKS_REPLY.notAllowed;
    case 'timeout':
      return SOCKS_REPLY.ttlExpired;
    case 'unreachable':
      return SOCKS_REPLY.hostUnreachable;
    default:
      return SOCKS_REPLY.failure;
  }
}

export type SocksConnect = (target: string, options: { signal: AbortSignal }) => Promise<MeshStream>;

export interface SocksServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Parses a complete greeting + request from `buf`; null while more bytes are needed. */
export function parseSocksRequest(buf: Buffer): {
  greetingLen: number;
  methods: number[];
  requestLen: number;
  cmd: number;
  target: string | null;
  atyp: number;
} | null {
  if (buf.length < 2) return null;
  if (buf[0] !== 5) throw new MmogitError('ERR_SOCKS', 'not a SOCKS5 client');
  const nMethods = buf[1] as number;
  const greetingLen = 2 + nMethods;
  if (buf.length < greetingLen + 5) return null;
  const methods = [...buf.subarray(2, greetingLen)];
  const r = buf.subarray(greetingLen);
  if (r[0] !== 5 || r[2] !== 0) throw new MmogitError('ERR_SOCKS', 'malformed SOCKS5 request');
  const cmd = r[1] as number;
  const atyp = r[3] as number;
  let addrLen: number;
  if (atyp === 1) addrLen = 4;
  else if (atyp === 4) addrLen = 16;
  else if (atyp === 3) addrLen = 1 + (r[4] as number);
  else return { greetingLen, methods, requestLen: r.length, cmd, target: null, atyp };
  const requestLen = 4 + addrLen + 2;
  if (r.length < requestLen) return null;
  const a = r.subarray(4, 4 + addrLen);
  let host: string;
  if (atyp === 1) host = [...a].join('.');
  else if (atyp === 4) host = `[${(a.toString('hex').match(/.{4}/g) as string[]).join(':')}]`;
  else host = a.subarray(1).toString('utf8');
  const port = r.readUInt16BE(4 + addrLen);
  return { greetingLen, methods, requestLen, cmd, target: `${host}:${port}`, atyp };
}

function reply(socket: Socket, code: number): void {
  // BND.ADDR 0.0.0.0:0: the exit's own address is not told to the client (as tor does)
  socket.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
}

/** Serves SOCKS5 on `host` (loopback only) and `port` (0 = any). */
export async function startSocksServer(
  connectStream: SocksConnect,
  options: { host?: string; port?: number } = {},
): Promise<SocksServer> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'the mesh SOCKS server listens on loopback only');
  }
  const sockets = new Set<Socket>();
  // allowHalfOpen: an application that half-closes after its request (a client reading to EOF) still gets
  // the whole answer; each direction of the mesh stream ends on its own (docs/protocol.md §8.5), while net's
  // default would end our write side on the application's FIN.
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    void handle(socket);
  });

  async function handle(socket: Socket): Promise<void> {
    const timer = setTimeout(() => socket.destroy(), SOCKS_HANDSHAKE_TIMEOUT_MS);
    let buf = Buffer.alloc(0);
    let greeted = false;
    const req = await new Promise<ReturnType<typeof parseSocksRequest>>((resolve) => {
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        try {
          if (!greeted && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
            greeted = true;
            const methods = [...buf.subarray(2, 2 + (buf[1] as number))];
            socket.write(Buffer.from([5, methods.includes(0) ? 0 : 0xff]));
            if (!methods.includes(0))
              throw new MmogitError('ERR_SOCKS', 'client offers no acceptable method');
          }
          const parsed = parseSocksRequest(buf);
          if (parsed || buf.length > MAX_SOCKS_BYTES) {
            socket.off('data', onData);
            resolve(parsed);
          }
        } catch {
          socket.off('data', onData);
          resolve(null);
        }
      };
      socket.on('data', onData);
      socket.once('close', () => resolve(null));
    });
    if (!req) {
      clearTimeout(timer);
      socket.destroy();
      return;
    }
    const rest = buf.subarray(req.greetingLen + req.requestLen);
    socket.pause();
    if (req.cmd !== 1 || req.target === null) {
      clearTimeout(timer);
      reply(socket, req.cmd !== 1 ? SOCKS_REPLY.commandNotSupported : SOCKS_REPLY.addressNotSupported);
      socket.end();
      return;
    }
    const abort = new AbortController();
    socket.once('close', () => abort.abort(new MeshError('closed', 'SOCKS client went away')));
    let stream: MeshStream;
    try {
      stream = await connectStream(req.target, { signal: abort.signal });
    } catch (e) {
      clearTimeout(timer);
      log('CONNECT %s failed: %s', req.target, (e as Error).message);
      if (!socket.destroyed) {
        reply(socket, replyFor(e));
        socket.end();
      }
      return;
    }
    clearTimeout(timer);
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    reply(socket, SOCKS_REPLY.ok);
    if (rest.length > 0) stream.write(rest);
    stream.on('error', () => socket.destroy());
    socket.on('error', () => stream.destroy());
    socket.on('close', () => {
      if (!stream.destroyed && !stream.writableEnded) stream.destroy();
    });
    stream.on('close', () => {
      if (!socket.destroyed && !socket.writableEnded) socket.destroy();
    });
    socket.pipe(stream);
    stream.pipe(socket);
    socket.resume();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new MmogitError('ERR_PORT_IN_USE', `SOCKS port ${options.port} is in use`, { cause: e })
          : e,
      ),
    );
    server.listen(options.port ?? DEFAULT_SOCKS_PORT, host, () => resolve());
  });
  const a = server.address();
  return {
    host,
    port: typeof a === 'object' && a ? a.port : (options.port ?? DEFAULT_SOCKS_PORT),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
