import type { Duplex } from 'node:stream';
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError } from '../errors.js';
import { readWaiter } from './_read-waiter.js';

/**
 * The minimal ordered, reliable byte pipe the post-quantum channel and the sync protocol run over: a Node socket
 * (tests, SOCKS), a libp2p stream (agents), or a mesh tunnel. Reads are exact so framing code stays simple.
 */
export interface ByteChannel {
  /** Resolves with exactly `n` bytes; rejects ERR_CONNECTION_CLOSED if the peer ends first. */
  readExactly(n: number, options?: AbortOptions): Promise<Uint8Array>;
  /** Writes all of `bytes` (waits for drain when the OS buffer is full). */
  write(bytes: Uint8Array, options?: AbortOptions): Promise<void>;
  /** Half-closes our side after pending writes; reads may continue. */
  close(): Promise<void>;
  /** Tears the channel down at once; pending reads reject with `err`. */
  abort(err: Error): void;
}

/** A {@link ByteChannel} over a Node Duplex (net.Socket, SOCKS socket, …). */
export function channelFromDuplex(stream: Duplex): ByteChannel {
  const chunks: Buffer[] = [];
  let buffered = 0;
  let ended = false;
  let failure: Error | null = null;
  const { wake, wait } = readWaiter();
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    wake();
  });
  stream.on('end', () => {
    ended = true;
    wake();
  });
  stream.on('close', () => {
    ended = true;
    wake();
  });
  stream.on('error', (err) => {
    failure = err;
    wake();
  });

  const take = (n: number): Uint8Array => {
    const first = chunks[0] as Buffer;
    if (first.length >= n) {
      // Common case: the head chunk holds the whole read; hand out a view instead of copying.
      if (first.length === n) chunks.shift();
      else chunks[0] = first.subarray(n);
      buffered -= n;
      return new Uint8Array(first.buffer, first.byteOffset, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = chunks[0] as Buffer;
      const used = Math.min(head.length, n - filled);
      out.set(head.subarray(0, used), filled);
      filled += used;
      if (used === head.length) chunks.shift();
      else chunks[0] = head.subarray(used);
    }
    buffered -= n;
    return out;
  };

  return {
    async readExactly(n, options = {}) {
      for (;;) {
        if (buffered >= n) return take(n);
        if (failure) {
          throw new MmogitError('ERR_CONNECTION_CLOSED', `connection failed: ${(failure as Error).message}`, {
            cause: failure,
          });
        }
        if (ended) {
          throw new MmogitError('ERR_CONNECTION_CLOSED', `connection closed after ${buffered} of ${n} bytes`);
        }
        await wait(options.signal);
      }
    },
    async write(bytes, options = {}) {
      if (options.signal?.aborted) throw abortReason(options.signal, 'write');
      if (stream.destroyed || stream.writableEnded) {
        throw new MmogitError('ERR_CONNECTION_CLOSED', 'write on a closed connection');
      }
      if (!stream.write(bytes)) {
        await new Promise<void>((resolve, reject) => {
          const cleanup = () => {
            stream.off('drain', onDrain);
            stream.off('close', onClose);
          };
          const onDrain = () => {
            cleanup();
            resolve();
          };
          const onClose = () => {
            cleanup();
            reject(new MmogitError('ERR_CONNECTION_CLOSED', 'connection closed while writing'));
          };
          stream.once('drain', onDrain);
          stream.once('close', onClose);
        });
      }
    },
    async close() {
      if (!stream.writableEnded) await new Promise<void>((resolve) => stream.end(resolve));
    },
    abort(err) {
      failure = err;
      stream.destroy(err);
      wake();
    },
  };
}
