import { MmogitError } from '../errors.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import type { SecureSession } from './session.js';

/**
 * A {@link ByteChannel} over a post-quantum {@link SecureSession}, so byte-stream protocols (memory sync) run
 * inside the encrypted, authenticated channel. Writes become session payloads (each ≤ the session's frame
 * limit after splitting); reads are served from received payloads.
 */
export function channelFromSession(session: SecureSession, underlying: ByteChannel): ByteChannel {
  // Received payloads are queued as they are and copied once per read: joining each payload onto one growing
  // buffer would copy O(n²) bytes when a peer sends an n-byte read as n tiny payloads.
  let queue: Uint8Array[] = [];
  let first = 0; // index of the oldest unread payload (no Array#shift: it is O(n) per call on long queues)
  let head = 0; // bytes of queue[first] already consumed
  let buffered = 0;
  let ended = false;
  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = queue[first] as Uint8Array;
      const used = Math.min(chunk.length - head, n - filled);
      out.set(chunk.subarray(head, head + used), filled);
      filled += used;
      head += used;
      if (head === chunk.length) {
        first++;
        head = 0;
      }
    }
    if (first === queue.length) {
      queue = [];
      first = 0;
    } else if (first > 1024 && first * 2 > queue.length) {
      queue = queue.slice(first);
      first = 0;
    }
    buffered -= n;
    return out;
  };
  return {
    async readExactly(n, options = {}) {
      while (buffered < n) {
        if (ended) {
          throw new MmogitError('ERR_CONNECTION_CLOSED', `session closed after ${buffered} of ${n} bytes`);
        }
        const next = await session.receive(options.signal ? { signal: options.signal } : {});
        if (next === null) {
          ended = true;
          continue;
        }
        if (next.length > 0) {
          queue.push(next);
          buffered += next.length;
        }
      }
      return take(n);
    },
    async write(bytes, options = {}) {
      await session.send(bytes, options.signal ? { signal: options.signal } : {});
    },
    async close() {
      await session.close();
    },
    abort(err) {
      underlying.abort(err);
    },
  };
}
