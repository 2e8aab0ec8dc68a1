import { MmogitError } from '../errors.js';
import type { SecureSession } from '../pqc/session.js';
import type { ByteChannel } from '../transport/byte-channel.js';

/**
 * A {@link ByteChannel} over a post-quantum {@link SecureSession}, so byte-stream protocols (memory sync) run
 * inside the encrypted, authenticated channel. Writes become session payloads (each ≤ the session's frame
 * limit after splitting); reads are served from received payloads.
 */
export function channelFromSession(session: SecureSession, underlying: ByteChannel): ByteChannel {
  let buffer = new Uint8Array(0);
  let ended = false;
  return {
    async readExactly(n, options = {}) {
      while (buffer.length < n) {
        if (ended) {
          throw new MmogitError(
            'ERR_CONNECTION_CLOSED',
            `session closed after ${buffer.length} of ${n} bytes`,
          );
        }
        const next = await session.receive(options.signal ? { signal: options.signal } : {});
        if (next === null) {
          ended = true;
          continue;
        }
        const joined = new Uint8Array(buffer.length + next.length);
        joined.set(buffer, 0);
        joined.set(next, buffer.length);
        buffer = joined;
      }
      const out = buffer.slice(0, n);
      buffer = buffer.subarray(n);
      return out;
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
