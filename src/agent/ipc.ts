import { chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { type AbortOptions, connect, untilDrained } from '../_async.js';
import { createLogger } from '../_log.js';
import { abortReason, deadline, ERROR_CODES, type ErrorCode, MmogitError } from '../errors.js';
import type { IpcParams } from './ipc-params.js';

/**
 * The CLI ↔ daemon channel: newline-delimited JSON over a Unix socket in the config dir (mode 0600 from the
 * moment it has its name), never TCP. One request per connection:
 *
 *   client → `{"method":"send","params":{…}}\n`
 *   daemon → zero or more `{"progress":{…}}\n`, then exactly one `{"result":…}\n` or `{"error":{code,message,details}}\n`
 *
 * Whatever arrives on the socket is untrusted input: any line, however malformed, gets a typed error reply and
 * never reaches a handler unchecked, and no request can stop the daemon. Wire format: docs/protocol.md §7.
 */

const log = createLogger('mmogit:agent:ipc');

/** A request line larger than this is refused (the CLI sends short commands; memory text is capped too). */
export const IPC_MAX_LINE_BYTES = 1024 * 1024;
/** A connection must deliver its request line within this time, else it gets `ERR_TIMEOUT` and is closed. */
export const IPC_REQUEST_TIMEOUT_MS = 10_000;
/** Connections served at once; Node closes further ones at once until some end. */
export const IPC_MAX_CONNECTIONS = 64;
/** How long a connection may stay open after its last reply line (the client should hang up at once). */
const LINGER_MS = 2_000;
/** Longest method name (ours are short; the name is echoed in the error, so it must stay small). */
const MAX_METHOD_LENGTH = 64;
export const DEFAULT_IPC_TIMEOUT_MS = 30_000;

export interface IpcContext {
  /**
   * Streams a progress object to the caller (shown on stderr by the CLI). False when the connection's write
   * buffer is full: a handler that streams much should then wait for {@link IpcContext.drain}.
   */
  progress(event: Record<string, unknown>): boolean;
  /** Resolves once the connection's write buffer has room again (at once when it has), or the client is gone. */
  drain(): Promise<void>;
  /** Fires when the client disconnects or the daemon stops. */
  signal: AbortSignal;
}

/** A method: gets the request's params (a plain JSON object, fields unchecked: see ipc-params.ts). */
export type IpcHandler = (params: IpcParams, context: IpcContext) => Promise<unknown>;

export interface IpcServer {
  readonly path: string;
  close(): Promise<void>;
}

/** One checked request. */
export interface IpcRequest {
  method: string;
  params: IpcParams;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the shape of a parsed request: a JSON object with a non-empty `method` string and, when present, a
 * `params` object (`null` counts as absent).
 * @throws MmogitError `ERR_DAEMON_IPC` for a request that is not such an object, `ERR_INVALID_ARGUMENT` for
 *   `params` that are not an object.
 */
export function checkIpcRequest(value: unknown): IpcRequest {
  if (!isPlainObject(value)) {
    throw new MmogitError('ERR_DAEMON_IPC', 'request must be a JSON object {"method":…,"params":{…}}');
  }
  const { method, params } = value;
  if (typeof method !== 'string' || method === '' || method.length > MAX_METHOD_LENGTH) {
    throw new MmogitError(
      'ERR_DAEMON_IPC',
      `request needs a "method" string of 1–${MAX_METHOD_LENGTH} characters`,
    );
  }
  if (params !== undefined && params !== null && !isPlainObject(params)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', '"params" must be a JSON object', {
      details: { param: 'params' },
    });
  }
  return { method, params: params ?? {} };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one request line (without its `\n`).
 * @throws MmogitError `ERR_DAEMON_IPC` (not UTF-8, not JSON, not a request object) or `ERR_INVALID_ARGUMENT`.
 */
export function parseIpcRequest(line: Uint8Array): IpcRequest {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(line));
  } catch {
    throw new MmogitError('ERR_DAEMON_IPC', 'request is not JSON');
  }
  return checkIpcRequest(value);
}

function errorPayload(e: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  if (e instanceof MmogitError) return e.toJSON();
  return { code: 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

function isBlank(line: Buffer): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/**
 * Splits a socket's bytes into lines (blank ones skipped) and hands each to `onLine` until it returns false.
 * A line over `max` bytes calls `onTooLong` instead, before more than `max` bytes are held. Returns `stop`.
 */
function readLines(
  socket: Socket,
  max: number,
  onLine: (line: Buffer) => boolean,
  onTooLong: () => void,
): () => void {
  let parts: Buffer[] = [];
  let size = 0;
  let stopped = false;
  const stop = () => {
    stopped = true;
    parts = [];
    socket.off('data', onData);
  };
  function onData(chunk: Buffer): void {
    let at = 0;
    while (!stopped) {
      const nl = chunk.indexOf(0x0a, at);
      const end = nl < 0 ? chunk.length : nl;
      if (size + (end - at) > max) {
        stop();
        onTooLong();
        return;
      }
      if (end > at) {
        parts.push(chunk.subarray(at, end));
        size += end - at;
      }
      if (nl < 0) return;
      const line = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      parts = [];
      size = 0;
      at = nl + 1;
      if (!isBlank(line) && !onLine(line)) stop();
    }
  }
  socket.on('data', onData);
  return stop;
}

/** Serves one connection: reads one request line (bounded in size and time), runs its handler, replies. */
function serveConnection(
  socket: Socket,
  handlers: Readonly<Record<string, IpcHandler>>,
  open: Set<Socket>,
): void {
  open.add(socket);
  const abort = new AbortController();
  let linger: NodeJS.Timeout | undefined;
  const requestTimer = setTimeout(() => {
    stopReading();
    finish({
      error: { code: 'ERR_TIMEOUT', message: `no IPC request within ${IPC_REQUEST_TIMEOUT_MS} ms` },
    });
  }, IPC_REQUEST_TIMEOUT_MS);
  socket.on('close', () => {
    clearTimeout(requestTimer);
    clearTimeout(linger);
    open.delete(socket);
    abort.abort(new MmogitError('ERR_ABORTED', 'IPC client disconnected'));
  });
  socket.on('error', () => {});

  /**
   * Writes one line; an object JSON cannot encode becomes `fallback` (or is skipped when there is none).
   * False when the socket's write buffer is full (or the socket is gone).
   */
  const write = (obj: unknown, fallback?: unknown): boolean => {
    if (socket.destroyed || socket.writableEnded) return false;
    let line: string;
    try {
      line = JSON.stringify(obj);
    } catch {
      if (fallback === undefined) return true;
      line = JSON.stringify(fallback);
    }
    return socket.write(`${line}\n`);
  };
  /** Resolves when the socket drains or closes (the handler's signal then says which). */
  const drain = (): Promise<void> => untilDrained(socket);
  /** The last line: then half-close, and cut a client that does not hang up. */
  const finish = (obj: unknown): void => {
    write(obj, { error: { code: 'ERR_INTERNAL', message: 'the daemon reply could not be encoded as JSON' } });
    if (!socket.destroyed) socket.end();
    linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
  };

  let requested = false;
  // The client ended its side before a whole request line: nothing will come, so end ours at once (no reply).
  socket.on('end', () => {
    if (requested || socket.writableEnded) return;
    clearTimeout(requestTimer);
    stopReading();
    socket.end();
  });
  const stopReading = readLines(
    socket,
    IPC_MAX_LINE_BYTES,
    (line) => {
      requested = true;
      clearTimeout(requestTimer);
      let request: IpcRequest;
      try {
        request = parseIpcRequest(line);
      } catch (e) {
        finish({ error: errorPayload(e) });
        return false;
      }
      const { method, params } = request;
      const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
      if (!handler) {
        finish({ error: { code: 'ERR_DAEMON_IPC', message: `unknown daemon method "${method}"` } });
        return false;
      }
      log('→ %s', method);
      const context: IpcContext = {
        progress: (event) => write({ progress: event }),
        drain,
        signal: abort.signal,
      };
      // An async wrapper, so a handler that throws synchronously is answered like one that rejects.
      (async () => handler(params, context))()
        .then(
          (result) => finish({ result: result ?? null }),
          (e) => {
            log('✗ %s: %s', method, e instanceof Error ? e.message : String(e));
            finish({ error: errorPayload(e) });
          },
        )
        .catch((e) => log('✗ %s: reply failed: %s', method, e instanceof Error ? e.message : String(e)));
      return false; // one request per connection: later bytes are ignored
    },
    () => {
      clearTimeout(requestTimer);
      finish({ error: { code: 'ERR_TOO_LARGE', message: `IPC request over ${IPC_MAX_LINE_BYTES} bytes` } });
    },
  );
}

/**
 * Binds `server` to `path` with no moment at which another user could connect: the socket is created inside a
 * fresh 0700 directory beside `path`, made 0600, and only then renamed to `path` (rename(2) replaces a stale
 * socket atomically). Binding at `path` and then calling chmod would leave it open to others in between
 * whenever the umask is loose or the directory is not private.
 */
async function listenPrivately(server: Server, path: string): Promise<void> {
  const dir = await mkdtemp(join(dirname(path), '.ipc-'));
  const bound = join(dir, 's');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(bound, 0o600);
    await rename(bound, path);
  } catch (e) {
    server.close();
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts the daemon's IPC server on `path` (replacing a stale socket file). */
export async function startIpcServer(
  path: string,
  handlers: Readonly<Record<string, IpcHandler>>,
): Promise<IpcServer> {
  const open = new Set<Socket>();
  // allowHalfOpen: a client may end its side after the request line (a shell pipe does); net's default would
  // end ours too, and a handler that answers later would find the socket ended and drop its reply. We end our
  // side ourselves, after the last line (`finish`).
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    try {
      serveConnection(socket, handlers, open);
    } catch (e) {
      log('connection failed: %s', e instanceof Error ? e.message : String(e));
      socket.destroy();
    }
  });
  server.maxConnections = IPC_MAX_CONNECTIONS;
  await listenPrivately(server, path);
  return {
    path,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

export interface IpcCallOptions extends AbortOptions {
  onProgress?: (event: Record<string, unknown>) => void;
}

/** A socket error of the client as a typed error (an `MmogitError`, e.g. the deadline, passes unchanged). */
function ipcSocketError(e: unknown): MmogitError {
  if (e instanceof MmogitError) return e;
  const err = e as NodeJS.ErrnoException;
  // ENOTDIR: a path component is a file, so no daemon can listen there either.
  return err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTDIR'
    ? new MmogitError('ERR_DAEMON_NOT_RUNNING', 'the mmogit daemon is not running (run `mmogit tor start`)')
    : new MmogitError('ERR_DAEMON_IPC', `daemon IPC failed: ${err.message}`, { cause: err });
}

/** Calls `method` on the daemon listening at `path`. Rejects ERR_DAEMON_NOT_RUNNING when nothing listens. */
export async function ipcCall<T = unknown>(
  path: string,
  method: string,
  params: Record<string, unknown> = {},
  options: IpcCallOptions = {},
): Promise<T> {
  const what = `daemon ${method}`;
  // Cleared when the call ends: a CLI that follows (many calls, each with a long deadline) keeps no timers.
  const bound = deadline(options.signal, options.timeoutMs ?? DEFAULT_IPC_TIMEOUT_MS, what);
  const signal = bound.signal;
  let socket: Socket;
  try {
    socket = await connect({ path }, { signal, what });
  } catch (e) {
    bound.clear();
    throw ipcSocketError(e);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      bound.clear();
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      fn();
    };
    const onAbort = () => finish(() => reject(abortReason(signal, what)));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(ipcSocketError(e))));
    socket.on('close', () =>
      finish(() =>
        reject(new MmogitError('ERR_DAEMON_IPC', `daemon closed the connection during ${method}`)),
      ),
    );
    socket.write(`${JSON.stringify({ method, params })}\n`);
    const bad = (what: string) =>
      finish(() => reject(new MmogitError('ERR_DAEMON_IPC', `daemon sent ${what}`)));
    readLines(
      socket,
      64 * 1024 * 1024,
      (line) => {
        let msg: unknown;
        try {
          msg = JSON.parse(utf8.decode(line));
        } catch {
          bad('a line that is not JSON');
          return false;
        }
        if (!isPlainObject(msg)) {
          bad('a line that is not a JSON object');
          return false;
        }
        if (isPlainObject(msg.progress)) {
          options.onProgress?.(msg.progress);
          return true;
        }
        if (isPlainObject(msg.error)) {
          const err = msg.error;
          const code: ErrorCode =
            typeof err.code === 'string' && Object.hasOwn(ERROR_CODES, err.code)
              ? (err.code as ErrorCode)
              : 'ERR_DAEMON_IPC';
          const details = isPlainObject(err.details) ? err.details : undefined;
          finish(() =>
            reject(
              new MmogitError(code, typeof err.message === 'string' ? err.message : 'daemon error', {
                details,
              }),
            ),
          );
          return false;
        }
        if ('result' in msg) {
          finish(() => resolve(msg.result as T));
          return false;
        }
        return true; // a line kind this client does not know: skipped
      },
      () => finish(() => reject(new MmogitError('ERR_TOO_LARGE', 'daemon reply too large'))),
    );
  });
}
