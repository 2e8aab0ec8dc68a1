/**
 * Serving the MCP server over stdio (MCP spec, transports: "stdio"): newline-delimited JSON-RPC on stdin and
 * stdout. The server MUST NOT write anything to stdout that is not an MCP message, so before the transport
 * starts, every other write to `process.stdout` (ours, a library's, `console.log`) is sent to stderr, and
 * only the transport holds the real stdout.
 * @module
 */
import { type Readable, Transform, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { createLogger } from '../_log.js';
import type { AgentLink } from './daemon-link.js';
import { createMcpServer } from './server.js';

const log = createLogger('mmogit:mcp');

/** Largest JSON-RPC line accepted on stdin; a longer one is dropped by the transport with an error. */
export const MAX_STDIN_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Takes stdout for MCP frames alone: from now on `process.stdout.write` goes to stderr, and the returned
 * stream writes to the real stdout. Idempotent per process.
 */
export function claimStdout(): Writable {
  const stdout = process.stdout as NodeJS.WriteStream & { mmogitMcpFrames?: Writable };
  if (stdout.mmogitMcpFrames) return stdout.mmogitMcpFrames;
  const realWrite = stdout.write.bind(stdout) as (
    chunk: Uint8Array | string,
    cb: (e?: Error | null) => void,
  ) => boolean;
  stdout.write = ((chunk: Uint8Array | string, ...rest: unknown[]) =>
    (process.stderr.write as (c: Uint8Array | string, ...r: unknown[]) => boolean)(
      chunk,
      ...rest,
    )) as typeof stdout.write;
  const frames = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      realWrite(chunk, (e) => callback(e ?? null));
    },
  });
  stdout.mmogitMcpFrames = frames;
  return frames;
}

/** A JSON-RPC error response written by {@link filterJsonRpcLines} itself. */
export interface LineErrorReply {
  jsonrpc: '2.0';
  id?: string | number;
  error: { code: number; message: string; data: { code: 'ERR_INVALID_ARGUMENT' } };
}

function lineError(code: number, message: string, id?: unknown): LineErrorReply {
  return {
    jsonrpc: '2.0',
    // An id we can read is echoed (JSON-RPC 2.0 §5); otherwise none, which MCP's error response allows.
    ...(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? { id } : {}),
    error: { code, message, data: { code: 'ERR_INVALID_ARGUMENT' } },
  };
}

/**
 * The lines of `input` that are valid JSON-RPC messages, one per line, for the SDK's transport; every other line
 * is answered here. The SDK transport drops a line it cannot parse or validate with only a local error, so a
 * host that sent a request with, say, a `progressToken` of the wrong type waited for its answer until its own
 * timeout. JSON-RPC 2.0 §5.1 asks for an answer: `-32700` for a line that is not JSON, `-32600` for JSON that
 * is not a valid message (with the request's id when it has a usable one; batches, which MCP no longer
 * allows, are one such line). Invalid notifications and responses are dropped, as they have no one to answer.
 * A line longer than `maxLineBytes` calls `onOverflow` (the session ends) and nothing more is read.
 */
export function filterJsonRpcLines(
  input: Readable,
  reply: (message: LineErrorReply) => void,
  maxLineBytes: number,
  onOverflow: () => void,
): Readable {
  let pending: Buffer = Buffer.alloc(0);
  let overflowed = false;
  const judge = (raw: Buffer): string | null => {
    const line = raw.toString('utf8').replace(/\r$/, '');
    if (line.trim() === '') return null;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      reply(lineError(-32700, 'Parse error: the line is not JSON'));
      return null;
    }
    if (JSONRPCMessageSchema.safeParse(value).success) return `${line}\n`;
    if (Array.isArray(value)) {
      reply(lineError(-32600, 'Invalid Request: JSON-RPC batches are not supported'));
    } else if (typeof value === 'object' && value !== null && 'method' in value && 'id' in value) {
      reply(lineError(-32600, 'Invalid Request: not a valid JSON-RPC 2.0 / MCP request', value.id));
    } else if (typeof value !== 'object' || value === null) {
      reply(lineError(-32600, 'Invalid Request: not a JSON-RPC message'));
    }
    return null;
  };
  const filter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (overflowed) return callback();
      let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
        if (nl > maxLineBytes) break;
        const ok = judge(data.subarray(0, nl));
        if (ok !== null) this.push(ok);
        data = data.subarray(nl + 1);
      }
      const nl = data.indexOf(0x0a);
      if ((nl === -1 ? data.length : nl) > maxLineBytes) {
        overflowed = true;
        pending = Buffer.alloc(0);
        input.unpipe(filter);
        input.pause();
        onOverflow();
        return callback();
      }
      // Copied, so a small rest does not pin the whole chunk it came in.
      pending = Buffer.from(data);
      callback();
    },
  });
  input.on('error', (e) => filter.destroy(e));
  input.pipe(filter);
  return filter;
}

export interface StdioServeOptions {
  link: AgentLink;
  version: string;
  signal?: AbortSignal;
}

/**
 * Runs the agent's MCP server on stdin/stdout until stdin ends (the host closed it), the transport closes,
 * or `signal` fires. Resolves when it has stopped.
 */
export async function serveMcpStdio(options: StdioServeOptions): Promise<void> {
  const frames = claimStdout();
  const server = createMcpServer({ link: options.link, version: options.version });
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const lines = filterJsonRpcLines(
    process.stdin,
    (message) => frames.write(`${JSON.stringify(message)}\n`),
    MAX_STDIN_MESSAGE_BYTES,
    () => {
      log('transport: a line over %d bytes: session ended', MAX_STDIN_MESSAGE_BYTES);
      close();
    },
  );
  const transport = new StdioServerTransport(lines, frames, {
    // The filter holds lines to this bound already; the transport's own bound then never triggers first.
    maxBufferSize: MAX_STDIN_MESSAGE_BYTES + 1,
  });
  transport.onerror = (e) => log('transport: %s', e.message);
  const previous = server.onclose;
  server.onclose = () => {
    previous?.();
    resolveClosed();
  };
  const close = () => void server.close().catch(() => resolveClosed());
  await server.connect(transport);
  const inFlight = trackRequests(transport);
  // The host closing stdin asks us to exit (MCP spec, stdio "Shutdown"): answer what is in flight first.
  const drainThenClose = () => void inFlight.drained(DRAIN_ON_EOF_MS).then(close);
  process.stdin.once('end', drainThenClose);
  process.stdin.once('close', drainThenClose);
  frames.on('error', close); // EPIPE: the host went away, nobody reads answers any more
  options.signal?.addEventListener('abort', close, { once: true });
  log('serving MCP on stdio for %s', options.link.configDir);
  await closed;
  process.stdin.off('end', drainThenClose);
  process.stdin.off('close', drainThenClose);
}

/** How long requests still running when stdin ends may take to answer before the server closes anyway. */
export const DRAIN_ON_EOF_MS = 10_000;

/** Counts requests that have no response yet, by watching the transport's traffic both ways. */
function trackRequests(transport: StdioServerTransport): { drained(maxMs: number): Promise<void> } {
  const pending = new Set<string | number>();
  const waiters = new Set<() => void>();
  const onmessage = transport.onmessage;
  transport.onmessage = (message) => {
    if ('method' in message && 'id' in message) pending.add(message.id);
    onmessage?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message) => {
    await send(message);
    if (!('method' in message) && 'id' in message && message.id !== undefined) {
      pending.delete(message.id);
      if (pending.size === 0) for (const w of waiters) w();
    }
  };
  return {
    drained(maxMs) {
      if (pending.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, maxMs);
        waiters.add(done);
      });
    },
  };
}
