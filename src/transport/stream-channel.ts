/**
 * A {@link ByteChannel} over a libp2p v3 {@link Stream}, so the PQ channel and memory sync run unchanged over
 * one agent node's streams. libp2p 3 streams are event-based (`message`, `remoteCloseWrite`, `close`) with
 * `send()` returning false when the caller must await `onDrain()`.
 * @module
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { abortReason, MmogitError } from '../errors.js';
import { readWaiter } from './_read-waiter.js';
import type { ByteChannel } from './byte-channel.js';

/** Above this many unread bytes the stream is paused (yamux then stops granting window to the sender). */
export const STREAM_CHANNEL_HIGH_WATER = 4 * 1024 * 1024;

/**
 * Adapts a libp2p stream: exact reads, writes that respect backpressure, half-close, abort.
 *
 * @example
 * const ch = channelFromStream(await node.dialProtocol(onion, '/mmogit/msg/1.0.0'));
 * await ch.write(frame); const reply = await ch.readExactly(4);
 */
export function channelFromStream(stream: Stream): ByteChannel {
  const buffer = new Uint8ArrayList();
  let ended = false;
  let failure: Error | null = null;
  let paused = false;
  /** Bytes the pending reader waits for: never pause while it needs more than we hold. */
  let wanted = 0;
  const { wake, wait } = readWaiter();
  const resume = () => {
    if (!paused) return;
    paused = false;
    try {
      stream.resume();
    } catch {
      // readable end already closed: nothing more will come
      ended = true;
    }
  };
  stream.addEventListener('message', (evt: StreamMessageEvent) => {
    buffer.append(evt.data);
    if (!paused && buffer.byteLength > STREAM_CHANNEL_HIGH_WATER && buffer.byteLength >= wanted) {
      paused = true;
      stream.pause();
    }
    wake();
  });
  // 'end' fires once the remote closed its write side and the stream's own buffer is drained (a paused stream
  // keeps unread bytes even after 'close', so 'close' alone is not the end of the data)
  stream.addEventListener('end', () => {
    ended = true;
    wake();
  });
  stream.addEventListener('close', (evt: StreamCloseEvent) => {
    if (evt.error) failure ??= evt.error;
    else if (stream.readBufferLength === 0) ended = true;
    wake();
  });
  if (stream.readableEnded) ended = true;

  const closedError = (n: number) =>
    failure
      ? new MmogitError('ERR_CONNECTION_CLOSED', `stream failed: ${failure.message}`, { cause: failure })
      : new MmogitError('ERR_CONNECTION_CLOSED', `stream closed after ${buffer.byteLength} of ${n} bytes`);

  return {
    async readExactly(n, options = {}) {
      for (;;) {
        if (buffer.byteLength >= n) {
          wanted = 0;
          const out = buffer.subarray(0, n);
          buffer.consume(n);
          if (buffer.byteLength <= STREAM_CHANNEL_HIGH_WATER / 2) resume();
          // subarray may alias the list's chunk; hand out an independent copy
          return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice();
        }
        wanted = n;
        resume();
        if (failure || ended) throw closedError(n);
        await wait(options.signal);
      }
    },
    async write(bytes, options = {}) {
      if (options.signal?.aborted) throw abortReason(options.signal, 'write');
      if (failure || stream.writeStatus !== 'writable' || stream.status !== 'open') {
        throw new MmogitError('ERR_CONNECTION_CLOSED', 'write on a closed stream', {
          ...(failure ? { cause: failure } : {}),
        });
      }
      if (!stream.send(bytes)) {
        try {
          await stream.onDrain({ signal: options.signal });
        } catch (err) {
          if (options.signal?.aborted) throw abortReason(options.signal, 'write');
          throw new MmogitError('ERR_CONNECTION_CLOSED', 'stream closed while writing', { cause: err });
        }
      }
    },
    async close() {
      if (stream.writeStatus === 'writable') await stream.close();
    },
    abort(err) {
      failure = err;
      stream.abort(err);
      wake();
    },
  };
}
