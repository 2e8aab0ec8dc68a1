/**
 * The control connection: a TCP or Unix socket, reply framing, a FIFO of pending commands (tor answers
 * commands in order, control-spec §2.1) and a hook for asynchronous (650) replies. The layer under
 * {@link TorController}; most code should use the controller.
 * @module
 */
import type net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { type AbortOptions, connect } from '../../_async.js';
import { abortReason, MmogitError, withTimeout } from '../../errors.js';
import { clip, TorControlError } from './errors.js';
import { type ControlReply, ReplyParser } from './reply.js';

/** Where tor's control port listens: TCP host/port, or a Unix socket path (`ControlSocket`). */
export type ControlTarget = { host: string; port: number } | { path: string };

/** Default time to open the control connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default time for one command's reply. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

interface Pending {
  resolve: (reply: ControlReply) => void;
  reject: (err: unknown) => void;
  /** Set when the caller gave up: the reply is still read (to keep the FIFO aligned) and dropped. */
  abandoned: boolean;
}

function describe(target: ControlTarget): string {
  return 'path' in target ? target.path : `${target.host}:${target.port}`;
}

/** A framed control connection. Replies are matched to commands in order. */
export class ControlSocket {
  /** Called with every asynchronous (650) reply. */
  onEvent: ((reply: ControlReply) => void) | undefined;
  /** Resolves when the connection has closed (never rejects). */
  readonly closed: Promise<void>;

  private readonly parser = new ReplyParser();
  private readonly decoder = new StringDecoder('utf8');
  private readonly pending: Pending[] = [];
  private closeError: TorControlError | undefined;
  private isClosed = false;
  private markClosed!: () => void;

  private constructor(
    private readonly socket: net.Socket,
    readonly target: ControlTarget,
  ) {
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.closeError ??= new TorControlError(
        'ERR_TOR_CONTROL_CLOSED',
        `tor control connection failed: ${err.message}`,
        {
          cause: err,
          details: { target: describe(target) },
        },
      );
    });
    socket.on('close', () => this.onClose());
  }

  /** Opens a connection to tor's control port. Fails with `ERR_TOR_CONTROL_CLOSED` if nothing listens. */
  static async connect(target: ControlTarget, options: AbortOptions = {}): Promise<ControlSocket> {
    const where = describe(target);
    const signal = withTimeout(
      options.signal,
      options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      `tor control connect ${where}`,
    );
    try {
      return new ControlSocket(
        await connect(target, { signal, what: `tor control connect ${where}` }),
        target,
      );
    } catch (err) {
      if (err instanceof MmogitError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new TorControlError(
        'ERR_TOR_CONTROL_CLOSED',
        `cannot connect to tor control port ${where}: ${e.message}`,
        {
          cause: err,
          details: { target: where, errno: e.code },
        },
      );
    }
  }

  /** True once the connection has closed. */
  get isOpen(): boolean {
    return !this.isClosed;
  }

  /**
   * Sends one single-line command and resolves with its reply, whatever its status (callers check it).
   * `what` names the command in errors; never put secrets in it.
   */
  send(command: string, options: AbortOptions & { what?: string } = {}): Promise<ControlReply> {
    const what = `tor control ${options.what ?? command.split(' ', 1)[0]}`;
    if (/[\r\n]/.test(command)) {
      return Promise.reject(
        new MmogitError('ERR_INVALID_ARGUMENT', `${what}: command must be a single line`),
      );
    }
    if (this.isClosed) return Promise.reject(this.closedError(what));
    const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, what);
    if (signal.aborted) return Promise.reject(abortReason(signal, what));
    return new Promise<ControlReply>((resolve, reject) => {
      const onAbort = (): void => {
        entry.abandoned = true;
        reject(abortReason(signal, what));
      };
      const entry: Pending = {
        abandoned: false,
        resolve: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.socket.write(`${command}\r\n`);
    });
  }

  /** Closes the connection (pending commands fail with `ERR_TOR_CONTROL_CLOSED`) and waits until closed. */
  async close(): Promise<void> {
    if (!this.isClosed) {
      this.socket.end();
      // tor closes its side at once; destroy if it does not within a moment.
      const t = setTimeout(() => this.socket.destroy(), 1000);
      t.unref();
      await this.closed;
      clearTimeout(t);
    }
  }

  /** Destroys the connection at once, failing pending commands with `err`. */
  destroy(err?: TorControlError): void {
    if (err) this.closeError ??= err;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let replies: ControlReply[];
    try {
      replies = this.parser.push(this.decoder.write(chunk));
    } catch (err) {
      // Framing is lost: nothing after this can be matched to a command.
      this.destroy(err as TorControlError);
      return;
    }
    for (const reply of replies) {
      if (reply.status === 650) {
        this.onEvent?.(reply);
        continue;
      }
      const entry = this.pending.shift();
      if (!entry) {
        this.destroy(
          new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'tor sent a reply no command asked for', {
            details: { raw: clip(reply.raw), statusCode: reply.status },
          }),
        );
        return;
      }
      if (!entry.abandoned) entry.resolve(reply);
    }
  }

  private closedError(what: string): TorControlError {
    const base = this.closeError;
    return new TorControlError(
      base?.code === 'ERR_TOR_CONTROL_PROTOCOL' ? 'ERR_TOR_CONTROL_PROTOCOL' : 'ERR_TOR_CONTROL_CLOSED',
      base ? `${what}: ${base.message}` : `${what}: tor control connection closed`,
      { ...(base ? { cause: base } : {}), details: { target: describe(this.target), ...base?.details } },
    );
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const entry of this.pending.splice(0)) {
      if (!entry.abandoned) entry.reject(this.closedError('tor control'));
    }
    this.markClosed();
  }
}
