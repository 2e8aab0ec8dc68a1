/**
 * A listener whose accepted sockets are matched to dials by a tag, never by order. Behind an onion service the
 * listener may accept streams a dialer gave up on (a SOCKS attempt that timed out after tor had already opened
 * the service side), so the n-th accept need not belong to the n-th dial: each dial writes 16 random bytes
 * first, and {@link TaggedListener.accepted} waits for the socket that sent them (bounded by a signal).
 * @module
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { abortReason } from '../src/errors.js';

/** The tag's length in bytes. */
export const TAG_BYTES = 16;

export interface TaggedListener {
  port: number;
  /** A new tag for one dial: write it first on the dialled socket. */
  tag(): Buffer;
  /** The accepted socket that sent `tag` (its tag consumed); rejects when `signal` fires first. */
  accepted(tag: Buffer, signal: AbortSignal): Promise<net.Socket>;
  close(): Promise<void>;
}

/** The first {@link TAG_BYTES} bytes a socket sends, as hex. */
function readTag(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const tryRead = () => {
      const tag = s.read(TAG_BYTES) as Buffer | null;
      if (!tag) return;
      s.off('readable', tryRead);
      resolve(tag.toString('hex'));
    };
    s.on('readable', tryRead);
    s.once('close', () => reject(new Error('closed before its tag')));
    tryRead();
  });
}

/** Listens on 127.0.0.1 (a free port); sockets whose tag nobody awaits are destroyed. */
export async function taggedListener(): Promise<TaggedListener> {
  const waiting = new Map<string, (s: net.Socket) => void>();
  const early = new Map<string, net.Socket>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    readTag(s).then(
      (tag) => {
        const deliver = waiting.get(tag);
        waiting.delete(tag);
        if (deliver) deliver(s);
        else early.set(tag, s); // the dialer has not asked yet
      },
      () => s.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    tag: () => randomBytes(TAG_BYTES),
    accepted: (tag, signal) => {
      const key = tag.toString('hex');
      const ready = early.get(key);
      if (ready) {
        early.delete(key);
        return Promise.resolve(ready);
      }
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          waiting.delete(key);
          reject(abortReason(signal, 'waiting for the tagged stream'));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        waiting.set(key, (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
