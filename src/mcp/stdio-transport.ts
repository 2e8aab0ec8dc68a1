/**
 * The MCP stdio transport (MCP spec, transports: "stdio"): newline-delimited JSON-RPC messages on a readable
 * and a writable stream, each line parsed once. It implements the SDK's `Transport` contract as the SDK's own
 * `StdioServerTransport` does (`start` listens, `send` writes one line and waits for `drain` when the stream
 * is full, `close` stops listening and calls `onclose`; a line is a message when `JSONRPCMessageSchema`
 * accepts it), and adds what that one lacks: an answer to every malformed request (JSON-RPC 2.0 §5.1) and a
 * bound on the line length that ends the session instead of buffering without limit.
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';

/** A JSON-RPC error response the transport writes itself, for a line that is no valid message. */
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
 * What a line is: a message for the server, an error to answer, or nothing (blank, or an invalid notification
 * or response, which have no one to answer). `-32700` for a line that is not JSON, `-32600` for JSON that is
 * not a valid message, with the request's id when it has a usable one; a batch (MCP no longer allows them) is
 * one such line.
 */
export function judgeLine(line: string): { message: JSONRPCMessage } | { reply: LineErrorReply } | null {
  if (line.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { reply: lineError(-32700, 'Parse error: the line is not JSON') };
  }
  const parsed = JSONRPCMessageSchema.safeParse(value);
  if (parsed.success) return { message: parsed.data };
  if (Array.isArray(value)) {
    return { reply: lineError(-32600, 'Invalid Request: JSON-RPC batches are not supported') };
  }
  if (typeof value !== 'object' || value === null) {
    return { reply: lineError(-32600, 'Invalid Request: not a JSON-RPC message') };
  }
  if ('method' in value && 'id' in value) {
    return { reply: lineError(-32600, 'Invalid Request: not a valid JSON-RPC 2.0 / MCP request', value.id) };
  }
  return null;
}

export interface LineTransportOptions {
  /** The longest line accepted, in bytes without its `\n`; a longer one ends the session. */
  maxLineBytes: number;
}

/**
 * An MCP `Transport` over newline-delimited JSON on `input` and `output` (for `mmogit mcp`: stdin and the
 * stdout that `claimStdout` in stdio.ts hands over). Every line is parsed once: a valid message goes to `onmessage`,
 * a malformed request is answered here, and a line longer than `maxLineBytes` reports an `onerror`, stops the
 * reading and closes the transport (nothing after it is read).
 */
export class LineTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: Transport['onmessage'];

  readonly #input: Readable;
  readonly #output: Writable;
  readonly #max: number;
  #parts: Buffer[] = [];
  #size = 0;
  #started = false;
  #closed = false;

  constructor(input: Readable, output: Writable, options: LineTransportOptions) {
    this.#input = input;
    this.#output = output;
    this.#max = options.maxLineBytes;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('LineTransport already started (Server.connect starts it)');
    this.#started = true;
    this.#input.on('data', this.#onData);
    this.#input.on('error', this.#onInputError);
  }

  /** Writes `message` as one line; resolves once the stream took it (after `drain` when it was full). */
  send(message: JSONRPCMessage): Promise<void> {
    return this.#write(message);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopReading();
    this.onclose?.();
  }

  readonly #onInputError = (e: Error): void => {
    this.onerror?.(e);
  };

  readonly #onData = (chunk: Buffer | string): void => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let at = 0;
    while (!this.#closed) {
      const nl = data.indexOf(0x0a, at);
      const end = nl < 0 ? data.length : nl;
      if (this.#size + (end - at) > this.#max) {
        this.#stopReading();
        this.onerror?.(new Error(`a line over ${this.#max} bytes: the session ends`));
        void this.close();
        return;
      }
      if (end > at) {
        // Copied when kept past this chunk, so a small rest does not pin the whole chunk it came in.
        this.#parts.push(nl < 0 ? Buffer.from(data.subarray(at, end)) : data.subarray(at, end));
        this.#size += end - at;
      }
      if (nl < 0) return;
      const line = Buffer.concat(this.#parts, this.#size).toString('utf8').replace(/\r$/, '');
      this.#parts = [];
      this.#size = 0;
      at = nl + 1;
      this.#handle(line);
    }
  };

  #handle(line: string): void {
    const judged = judgeLine(line);
    if (judged === null) return;
    if ('reply' in judged) {
      this.#write(judged.reply).catch((e: Error) => this.onerror?.(e));
      return;
    }
    try {
      this.onmessage?.(judged.message);
    } catch (e) {
      this.onerror?.(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #write(message: JSONRPCMessage | LineErrorReply): Promise<void> {
    const output = this.#output;
    if (output.destroyed || output.writableEnded) {
      return Promise.reject(new Error('the MCP output stream is closed'));
    }
    return new Promise<void>((resolve, reject) => {
      if (output.write(`${JSON.stringify(message)}\n`)) return resolve();
      // Full: the message is queued; resolve when the stream takes more, or fail when it goes away.
      const done = (e?: Error) => {
        output.off('drain', onDrain);
        output.off('close', onClose);
        output.off('error', onClose);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new Error('the MCP output stream closed before the message was written'));
      output.on('drain', onDrain);
      output.on('close', onClose);
      output.on('error', onClose);
    });
  }

  #stopReading(): void {
    this.#input.off('data', this.#onData);
    this.#input.off('error', this.#onInputError);
    // Paused only when nobody else reads it, as the SDK's transport does.
    if (this.#input.listenerCount('data') === 0) this.#input.pause();
    this.#parts = [];
    this.#size = 0;
  }
}
