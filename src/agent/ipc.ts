import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../_log.js';
import { abortReason, ERROR_CODES, type ErrorCode, MmogitError, withTimeout } from '../errors.js';

/**
 * The CLI ↔ daemon channel: newline-delimited JSON over a Unix socket in the config dir (mode 0600, in a 0700
 * dir), never TCP. One request per connection:
 *
 *   client → `{"method":"send","params":{…}}\n`
 *   daemon → zero or more `{"progress":{…}}\n`, then exactly one `{"result":…}\n` or `{"error":{code,message,details}}\n`
 *
 * Wire format documented in docs/protocol.md §7.
 */

const log = createLogger('mmogit:agent:ipc');

/** A request line larger than this is refused (the CLI sends short commands; memory text is capped too). */
export const IPC_MAX_LINE_BYTES = 1024 * 1024;
export const DEFAULT_IPC_TIMEOUT_MS = 30_000;

export interface IpcContext {
  /** Streams a progress object to the caller (shown on stderr by the CLI). */
  progress(event: Record<string, unknown>): void;
  /** Fires when the client disconnects or the daemon stops. */
  signal: AbortSignal;
}

export type IpcHandler = (params: Record<string, unknown>, context: IpcContext) => Promise<unknown>;

export interface IpcServer {
  readonly path: string;
  close(): Promise<void>;
}

function errorPayload(e: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  if (e instanceof MmogitError) return e.toJSON();
  return { code: 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** Splits a socket's bytes into lines, refusing any line over `max` bytes. */
function lineReader(
  socket: Socket,
  max: number,
  onLine: (line: string) => void,
  onTooLong: () => void,
): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() !== '') onLine(line);
    }
    if (Buffer.byteLength(buffer) > max) {
      buffer = '';
      onTooLong();
    }
  });
}

/** Starts the daemon's IPC server on `path` (removing a stale socket file first). */
export async function startIpcServer(path: string, handlers: Record<string, IpcHandler>): Promise<IpcServer> {
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    open.add(socket);
    const abort = new AbortController();
    socket.on('close', () => {
      open.delete(socket);
      abort.abort(new MmogitError('ERR_ABORTED', 'IPC client disconnected'));
    });
    socket.on('error', () => {});
    const send = (obj: unknown) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(obj)}\n`);
    };
    let handled = false;
    lineReader(
      socket,
      IPC_MAX_LINE_BYTES,
      (line) => {
        if (handled) return;
        handled = true;
        let request: { method?: unknown; params?: unknown };
        try {
          request = JSON.parse(line);
        } catch {
          send({ error: { code: 'ERR_DAEMON_IPC', message: 'request is not JSON' } });
          socket.end();
          return;
        }
        const method = typeof request.method === 'string' ? request.method : '';
        const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
        if (!handler) {
          send({ error: { code: 'ERR_DAEMON_IPC', message: `unknown daemon method "${method}"` } });
          socket.end();
          return;
        }
        const params =
          typeof request.params === 'object' && request.params !== null
            ? (request.params as Record<string, unknown>)
            : {};
        log('→ %s', method);
        handler(params, { progress: (event) => send({ progress: event }), signal: abort.signal })
          .then(
            (result) => send({ result: result ?? null }),
            (e) => {
              log('✗ %s: %s', method, e instanceof Error ? e.message : String(e));
              send({ error: errorPayload(e) });
            },
          )
          .finally(() => socket.end());
      },
      () => {
        send({ error: { code: 'ERR_TOO_LARGE', message: 'IPC request too large' } });
        socket.destroy();
      },
    );
  });
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return {
    path,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

export interface IpcCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  onProgress?: (event: Record<string, unknown>) => void;
}

/** Calls `method` on the daemon listening at `path`. Rejects ERR_DAEMON_NOT_RUNNING when nothing listens. */
export async function ipcCall<T = unknown>(
  path: string,
  method: string,
  params: Record<string, unknown> = {},
  options: IpcCallOptions = {},
): Promise<T> {
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_IPC_TIMEOUT_MS, `daemon ${method}`);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const socket = createConnection(path);
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      fn();
    };
    const onAbort = () => finish(() => reject(abortReason(signal, `daemon ${method}`)));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      finish(() =>
        reject(
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? new MmogitError(
                'ERR_DAEMON_NOT_RUNNING',
                'the mmogit daemon is not running (run `mmogit tor start`)',
              )
            : new MmogitError('ERR_DAEMON_IPC', `daemon IPC failed: ${e.message}`, { cause: e }),
        ),
      );
    });
    socket.on('close', () =>
      finish(() =>
        reject(new MmogitError('ERR_DAEMON_IPC', `daemon closed the connection during ${method}`)),
      ),
    );
    socket.on('connect', () => socket.write(`${JSON.stringify({ method, params })}\n`));
    lineReader(
      socket,
      64 * 1024 * 1024,
      (line) => {
        let msg: { progress?: Record<string, unknown>; result?: unknown; error?: Record<string, unknown> };
        try {
          msg = JSON.parse(line);
        } catch {
          return finish(() =>
            reject(new MmogitError('ERR_DAEMON_IPC', 'daemon sent a line that is not JSON')),
          );
        }
        if (msg.progress) options.onProgress?.(msg.progress);
        else if (msg.error) {
          const err = msg.error;
          const code: ErrorCode =
            typeof err.code === 'string' && Object.hasOwn(ERROR_CODES, err.code)
              ? (err.code as ErrorCode)
              : 'ERR_DAEMON_IPC';
          finish(() =>
            reject(
              new MmogitError(code, String(err.message ?? 'daemon error'), {
                details: err.details as Record<string, unknown> | undefined,
              }),
            ),
          );
        } else if ('result' in msg) finish(() => resolve(msg.result as T));
      },
      () => finish(() => reject(new MmogitError('ERR_TOO_LARGE', 'daemon reply too large'))),
    );
  });
}
