/**
 * Serving the MCP server over stdio (MCP spec, transports: "stdio"): newline-delimited JSON-RPC on stdin and
 * stdout. The server MUST NOT write anything to stdout that is not an MCP message, so before the transport
 * starts, every other write to `process.stdout` (ours, a library's, `console.log`) is sent to stderr, and
 * only the transport holds the real stdout.
 * @module
 */
import { Writable } from 'node:stream';
import { createLogger } from '../_log.js';
import type { AgentLink } from './daemon-link.js';
import { createMcpServer } from './server.js';
import { LineTransport } from './stdio-transport.js';

const log = createLogger('mmogit:mcp');

/** Largest JSON-RPC line accepted on stdin, in bytes; a longer one ends the session. */
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
  // Each line is parsed once, there: a malformed request is answered, a line over the bound ends the session.
  const transport = new LineTransport(process.stdin, frames, { maxLineBytes: MAX_STDIN_MESSAGE_BYTES });
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
function trackRequests(transport: LineTransport): { drained(maxMs: number): Promise<void> } {
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
