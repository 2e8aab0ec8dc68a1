// A libp2p MultiaddrConnection over a net.Socket. @libp2p/tcp does not export its wrapper, so this is our own
// on AbstractMultiaddrConnection (see /work/shared/notes/libp2p-over-tor.md).
import type { Socket } from 'node:net';
import { type AbortOptions, type Logger, TimeoutError } from '@libp2p/interface';
import { AbstractMultiaddrConnection, type SendResult } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Uint8ArrayList } from 'uint8arraylist';

/** Idle sockets are closed after this long (tor keeps circuits; yamux keep-alive pings every 30 s). */
export const SOCKET_INACTIVITY_TIMEOUT_MS = 5 * 60_000;

export interface SocketConnInit {
  socket: Socket;
  remoteAddr: Multiaddr;
  direction: 'inbound' | 'outbound';
  log: Logger;
  inactivityTimeout?: number;
}

class SocketMultiaddrConnection extends AbstractMultiaddrConnection {
  private readonly socket: Socket;
  /** True while writes are being gathered for the uncork at the end of this tick. */
  private corked = false;

  constructor(init: SocketConnInit) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: init.log });
    const socket = init.socket;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (buf: Buffer) => this.onData(buf));
    socket.on('error', (err) => this.abort(err));
    socket.setTimeout(init.inactivityTimeout ?? SOCKET_INACTIVITY_TIMEOUT_MS);
    socket.once('timeout', () => this.abort(new TimeoutError('socket inactivity timeout')));
    socket.once('end', () => this.onTransportClosed());
    socket.once('close', (hadError) => {
      if (hadError) this.abort(new Error('socket closed with a transmission error'));
      else this.onTransportClosed();
    });
    socket.on('drain', () => this.safeDispatchEvent('drain'));
  }

  sendData(data: Uint8ArrayList): SendResult {
    let sentBytes = 0;
    let canSendMore = true;
    // Coalesce every write of this tick into one TCP segment: noise writes a frame's length and its ciphertext
    // separately, and tor (which does not set TCP_NODELAY) would hold the second part until our delayed ACK
    // came back — ~40 ms per message over an onion service.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (const buf of data) {
      sentBytes += buf.byteLength;
      canSendMore = this.socket.write(buf);
      if (!canSendMore) break;
    }
    return { sentBytes, canSendMore };
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.socket.destroy();
        reject(options?.signal?.reason ?? new Error('aborted'));
      };
      options?.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.once('close', () => {
        options?.signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      this.socket.destroySoon();
    });
  }

  sendReset(): void {
    if (this.socket.writableEnded) this.socket.destroy();
    else this.socket.resetAndDestroy();
  }

  sendPause(): void {
    this.socket.pause();
  }

  sendResume(): void {
    this.socket.resume();
  }
}

/** Wraps a connected socket for the libp2p upgrader (noise, then yamux). */
export function socketToMaConn(init: SocketConnInit): AbstractMultiaddrConnection {
  return new SocketMultiaddrConnection(init);
}
