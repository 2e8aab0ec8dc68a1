// A libp2p MultiaddrConnection over a net.Socket, or over any Node duplex (a mesh stream: src/mesh/streams.ts).
// @libp2p/tcp does not export its wrapper, so this is our own on AbstractMultiaddrConnection from @libp2p/utils.
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type AbortOptions, type Logger, TimeoutError } from '@libp2p/interface';
import { AbstractMultiaddrConnection, type SendResult } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Uint8ArrayList } from 'uint8arraylist';

/** Idle sockets are closed after this long (tor keeps circuits; yamux keep-alive pings every 30 s). */
export const SOCKET_INACTIVITY_TIMEOUT_MS = 5 * 60_000;

export interface SocketConnInit {
  /** A connected socket, or a duplex byte stream (no TCP options; its inactivity timer is ours). */
  socket: Socket | Duplex;
  remoteAddr: Multiaddr;
  direction: 'inbound' | 'outbound';
  log: Logger;
  inactivityTimeout?: number;
}

class SocketMultiaddrConnection extends AbstractMultiaddrConnection {
  private readonly socket: Socket | Duplex;
  /** A duplex's inactivity timer (a socket has its own), re-armed by every byte in or out. */
  private idle: NodeJS.Timeout | undefined;
  /** True once this tick's first send went out: later sends of the tick are gathered for one write at its end. */
  private corked = false;

  constructor(init: SocketConnInit) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: init.log });
    const socket = init.socket;
    this.socket = socket;
    const idleMs = init.inactivityTimeout ?? SOCKET_INACTIVITY_TIMEOUT_MS;
    const onIdle = () => this.abort(new TimeoutError('socket inactivity timeout'));
    if (socket instanceof Socket) {
      socket.setNoDelay(true);
      socket.setTimeout(idleMs);
      socket.once('timeout', onIdle);
    } else {
      // a duplex has no socket timeout: the same bound, re-armed by every byte in or out
      const idle = setTimeout(onIdle, idleMs);
      idle.unref();
      this.idle = idle;
      socket.on('data', () => idle.refresh());
      socket.once('close', () => clearTimeout(idle));
    }
    socket.on('data', (buf: Buffer) => this.onData(buf));
    socket.on('error', (err) => this.abort(err));
    socket.once('end', () => this.onTransportClosed());
    socket.once('close', (hadError?: boolean) => {
      if (hadError) this.abort(new Error('socket closed with a transmission error'));
      else this.onTransportClosed();
    });
    socket.on('drain', () => this.safeDispatchEvent('drain'));
  }

  sendData(data: Uint8ArrayList): SendResult {
    let sentBytes = 0;
    let canSendMore = true;
    this.idle?.refresh();
    const writeAll = () => {
      for (const buf of data) {
        sentBytes += buf.byteLength;
        canSendMore = this.socket.write(buf);
        if (!canSendMore) break;
      }
    };
    // One write per frame: noise hands over a message's length and its ciphertext as separate buffers, and as
    // two writes they could leave as two segments (tor, which sets no TCP_NODELAY, may hold the second until our
    // delayed ACK: ~40 ms per message over an onion service). The tick's first frame goes out at once, its
    // buffers corked into one writev; frames sent later in the same tick are gathered into one write at the
    // tick's end. Before, every frame waited for that end, behind whatever promise callbacks were queued — on a
    // receiver, the application's `message` event ran before its ack left (in-process A/B over tor at a load
    // of ~2: warm ping −96 µs median; docs/protocol.md §5.7.2.3).
    if (this.corked) {
      writeAll();
      return { sentBytes, canSendMore };
    }
    this.corked = true;
    this.socket.cork();
    writeAll();
    this.socket.uncork();
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
    });
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
      const socket = this.socket;
      if (socket instanceof Socket) socket.destroySoon();
      else socket.end();
    });
  }

  sendReset(): void {
    const socket = this.socket;
    if (socket.writableEnded || !(socket instanceof Socket)) socket.destroy();
    else socket.resetAndDestroy();
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
