/**
 * A live session: whole payloads over authenticated frames, one lock per direction, and a clean,
 * authenticated close so a cut connection is never mistaken for the end of the stream.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import { abortReason, hasCode, MmogitError, TimeoutError } from '../errors.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import type { CipherSuite } from './_wire.js';
import { FrameError } from './errors.js';
import {
  checkFrameLength,
  FRAME_CLOSE,
  FRAME_END,
  FRAME_MORE,
  type FrameCipher,
  MAX_FRAME_DATA,
} from './frames.js';

/** Default cap on one payload (both directions): 16 MiB. Larger memory-sync packs should raise it. */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
/** Default time allowed for sending one payload (slow tor circuits: ~100 KiB/s worst case for 16 MiB). */
export const SEND_TIMEOUT_MS = 180_000;

/**
 * Options of {@link SecureSession.send} and {@link SecureSession.receive}. `timeoutMs` of send defaults to
 * {@link SEND_TIMEOUT_MS}, and `Infinity` means no timer of the session's own (a caller that enforces its own
 * deadline with {@link SecureSession.abort} saves a timer and an AbortController per payload); receive has no
 * default (waiting for the next message is idle).
 */
export type SessionIoOptions = AbortOptions;

/** Options of {@link SecureSession.receive}. */
export interface SessionReceiveOptions extends SessionIoOptions {
  /**
   * Return a one-frame payload as a view into the frame's decrypted bytes instead of a fresh copy (its
   * `buffer` then also holds the frame's type byte in front): for readers that only look through
   * `byteOffset`/`length`, such as the mesh link's cell parser.
   */
  view?: boolean;
}

/** The authenticated peer of a session. `onion` is derived from `publicKey` (rend-spec-v3 §6). */
export interface SessionPeer {
  publicKey: Uint8Array;
  onion: string;
}

/** One live, forward-secret session over a ByteChannel (see {@link initiateSession}). */
export interface SecureSession {
  readonly peer: SessionPeer;
  readonly suite: CipherSuite;
  /** SHA-256 over the protocol label and every handshake byte; equal on both sides. */
  readonly transcriptHash: Uint8Array;
  /** Wall-clock duration of the handshake. */
  readonly handshakeMs: number;
  /** Sends one payload (split into ≤ 64 KiB frames). Concurrent sends are queued, never interleaved. */
  send(payload: Uint8Array, options?: SessionIoOptions): Promise<void>;
  /**
   * Sends the concatenation of `parts` as one payload in one frame (at most {@link MAX_FRAME_DATA} bytes in
   * all), encrypting part by part so the caller never joins them: the same bytes on the wire as `send`.
   */
  sendParts(parts: readonly Uint8Array[], options?: SessionIoOptions): Promise<void>;
  /** Receives one whole payload; null once the peer closed cleanly. */
  receive(options?: SessionReceiveOptions): Promise<Uint8Array | null>;
  /** Tears the session down at once (the channel too): pending and later sends and receives reject with `reason`. */
  abort(reason: Error): void;
  /**
   * Sends the authenticated close frame and ends our side; payloads already received stay readable. Whether the
   * peer can still answer depends on the transport (tor streams and non-half-open sockets end both ways).
   */
  close(): Promise<void>;
}

export interface SessionInit {
  channel: ByteChannel;
  peer: SessionPeer;
  suite: CipherSuite;
  transcriptHash: Uint8Array;
  handshakeMs: number;
  sender: FrameCipher;
  receiver: FrameCipher;
  maxPayload: number;
}

/** Serialises async work: each call runs after the previous one settled. */
class Lock {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => {});
    return result;
  }
}

export class Session implements SecureSession {
  readonly peer: SessionPeer;
  readonly suite: CipherSuite;
  readonly transcriptHash: Uint8Array;
  readonly handshakeMs: number;
  readonly #channel: ByteChannel;
  readonly #sender: FrameCipher;
  readonly #receiver: FrameCipher;
  readonly #maxPayload: number;
  readonly #sendLock = new Lock();
  readonly #receiveLock = new Lock();
  #failure: MmogitError | null = null;
  #sentClose = false;
  #gotClose = false;

  constructor(init: SessionInit) {
    this.peer = init.peer;
    this.suite = init.suite;
    this.transcriptHash = init.transcriptHash;
    this.handshakeMs = init.handshakeMs;
    this.#channel = init.channel;
    this.#sender = init.sender;
    this.#receiver = init.receiver;
    this.#maxPayload = init.maxPayload;
  }

  send(payload: Uint8Array, options: SessionIoOptions = {}): Promise<void> {
    return this.#sendWith(payload.length, options, async (signal) => {
      let offset = 0;
      do {
        const end = Math.min(offset + MAX_FRAME_DATA, payload.length);
        const type = end === payload.length ? FRAME_END : FRAME_MORE;
        await this.#channel.write(this.#sender.seal(type, payload.subarray(offset, end)), { signal });
        offset = end;
      } while (offset < payload.length);
    });
  }

  sendParts(parts: readonly Uint8Array[], options: SessionIoOptions = {}): Promise<void> {
    let length = 0;
    for (const p of parts) length += p.length;
    if (length > MAX_FRAME_DATA) {
      return Promise.reject(new RangeError(`sendParts takes at most ${MAX_FRAME_DATA} bytes, got ${length}`));
    }
    return this.#sendWith(length, options, async (signal) => {
      await this.#channel.write(this.#sender.sealParts(FRAME_END, parts, length), { signal });
    });
  }

  /** One payload of `length` bytes written by `write`, under the send lock and the send deadline. */
  #sendWith(
    length: number,
    options: SessionIoOptions,
    write: (signal: AbortSignal | undefined) => Promise<void>,
  ): Promise<void> {
    return this.#sendLock.run(async () => {
      this.#checkUsable();
      if (this.#sentClose) throw new MmogitError('ERR_CONNECTION_CLOSED', 'secure channel: send after close');
      if (length > this.#maxPayload) {
        throw new FrameError('too-large', `payload of ${length} bytes exceeds ${this.#maxPayload}`, {
          details: { length, max: this.#maxPayload },
        });
      }
      const ms = options.timeoutMs ?? SEND_TIMEOUT_MS;
      const { signal, done } =
        ms === Number.POSITIVE_INFINITY
          ? { signal: options.signal, done: () => {} }
          : deadline(options.signal, ms, 'secure channel send');
      if (signal?.aborted) {
        done();
        throw abortReason(signal, 'secure channel send'); // nothing written: the session stays usable
      }
      try {
        await write(signal);
      } catch (e) {
        // Part of a payload may be on the wire: the stream cannot be resumed.
        throw this.#fail(e);
      } finally {
        done();
      }
    });
  }

  abort(reason: Error): void {
    this.#fail(reason);
  }

  receive(options: SessionReceiveOptions = {}): Promise<Uint8Array | null> {
    return this.#receiveLock.run(async () => {
      this.#checkUsable();
      if (this.#gotClose) return null;
      const { signal, done } =
        options.timeoutMs === undefined
          ? { signal: options.signal, done: () => {} }
          : deadline(options.signal, options.timeoutMs, 'secure channel receive');
      try {
        return await this.#receivePayload(signal, options.view === true);
      } finally {
        done();
      }
    });
  }

  async #receivePayload(signal: AbortSignal | undefined, view: boolean): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      let header: Uint8Array;
      try {
        header = await this.#channel.readExactly(4, { signal });
      } catch (e) {
        // Nothing was consumed if we were aborted before a payload began: the session stays usable.
        if (parts.length === 0 && (hasCode(e, 'ERR_ABORTED') || hasCode(e, 'ERR_TIMEOUT'))) throw e;
        throw this.#fail(
          hasCode(e, 'ERR_CONNECTION_CLOSED')
            ? new MmogitError(
                'ERR_CONNECTION_CLOSED',
                'secure channel: connection ended without close frame',
                {
                  cause: e,
                  details: { reason: 'no-close-frame' },
                },
              )
            : e,
        );
      }
      let frame: { type: number; data: Uint8Array };
      try {
        const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
        checkFrameLength(length);
        let body: Uint8Array;
        try {
          body = await this.#channel.readExactly(length, { signal });
        } catch (e) {
          if (hasCode(e, 'ERR_CONNECTION_CLOSED')) {
            throw new FrameError('truncated', `connection ended inside a ${length}-byte frame`, { cause: e });
          }
          throw e;
        }
        frame = this.#receiver.open(header, body);
      } catch (e) {
        throw this.#fail(e);
      }
      if (frame.type === FRAME_CLOSE) {
        if (frame.data.length !== 0 || parts.length !== 0) {
          throw this.#fail(new FrameError('malformed', 'close frame inside a payload or with data'));
        }
        this.#gotClose = true;
        this.#receiver.destroy();
        return null;
      }
      if (frame.type !== FRAME_MORE && frame.type !== FRAME_END) {
        throw this.#fail(new FrameError('malformed', `unknown frame type ${frame.type}`));
      }
      total += frame.data.length;
      if (total > this.#maxPayload) {
        throw this.#fail(
          new FrameError('too-large', `incoming payload exceeds ${this.#maxPayload} bytes`, {
            details: { max: this.#maxPayload },
          }),
        );
      }
      parts.push(frame.data);
      // A fresh array unless a view was asked for, so `payload.buffer` holds exactly the payload (no type byte).
      if (frame.type === FRAME_END) {
        if (parts.length > 1) return concat(parts, total);
        return view ? (parts[0] as Uint8Array) : new Uint8Array(parts[0] as Uint8Array);
      }
    }
  }

  close(): Promise<void> {
    return this.#sendLock.run(async () => {
      if (this.#sentClose || this.#failure) return;
      this.#sentClose = true;
      try {
        await this.#channel.write(this.#sender.seal(FRAME_CLOSE, new Uint8Array(0)));
        await this.#channel.close();
      } catch (e) {
        // The peer already hung up (TCP without half-open and tor streams end both directions): nothing to close.
        if (!hasCode(e, 'ERR_CONNECTION_CLOSED')) throw this.#fail(e);
      } finally {
        this.#sender.destroy();
      }
    });
  }

  #checkUsable(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Marks the session dead, tears the channel down and wipes both keys. */
  #fail(e: unknown): MmogitError {
    const err =
      e instanceof MmogitError
        ? e
        : new MmogitError('ERR_CONNECTION_CLOSED', `secure channel: ${(e as Error)?.message ?? e}`, {
            cause: e,
          });
    if (!this.#failure) {
      this.#failure = err;
      this.#channel.abort(err);
      this.#sender.destroy();
      this.#receiver.destroy();
    }
    return err;
  }
}

/** Caller signal + a timeout whose timer is cleared by `done()` (no timer outlives its call). */
export function deadline(
  parent: AbortSignal | undefined,
  ms: number,
  what: string,
): { signal: AbortSignal; done: () => void } {
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new TimeoutError(`${what}: timed out after ${ms} ms`, { details: { timeoutMs: ms } })),
    ms,
  );
  timer.unref?.();
  return {
    signal: parent ? AbortSignal.any([parent, ctl.signal]) : ctl.signal,
    done: () => clearTimeout(timer),
  };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
