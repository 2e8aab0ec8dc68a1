/**
 * Links: one PQ session on one stream to a peer, used in both directions, with its table of requests waiting
 * for a reply; and the {@link LinkTable} of every open link, with each peer's current one.
 * @module
 */
import { sleep } from '../_async.js';
import { abortReason, MmogitError } from '../errors.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import { encodeFrame, type MessagingFrame } from './messaging-envelope.js';
import type { AnyEnvelope } from './messaging-envelope-v2.js';
import type { MessagingSession, MessagingTransportKind } from './messaging-types.js';

/** How long an orderly link close may wait for the session's close before the stream is dropped. */
export const LINK_CLOSE_GRACE_MS = 500;
/**
 * A link whose pending writes make no progress for this long is reset (`ERR_TIMEOUT`): the peer stopped
 * reading. The same bound as the PQ session's own per-payload send timeout, which links do not use (below).
 */
export const LINK_WRITE_STALL_MS = 180_000;
/**
 * Session send options of a link: no timer of the session's own per record. That timer cost an AbortController,
 * a setTimeout and a clearTimeout per frame (in-process A/B over tor: −30 µs median per warm ping, −48 µs of
 * CPU); the link's one stall watchdog bounds its writes instead.
 */
const NO_SESSION_TIMER = Object.freeze({ timeoutMs: Number.POSITIVE_INFINITY });

/** A frame on a link of either version (a version 1 link only ever carries version 1 envelopes). */
export type LinkFrame = MessagingFrame<AnyEnvelope>;

interface Pending {
  resolve(frame: LinkFrame): void;
  reject(err: Error): void;
}

/** One PQ session on one stream to a peer, used in both directions, speaking one message format version. */
export class Link {
  readonly pending = new Map<string, Pending>();
  closed = false;
  private writes: Promise<void> = Promise.resolve();
  /** Writes started and not yet finished. */
  private writing = 0;
  /**
   * One timer for the link's whole life, re-armed (refresh) when a write starts on an idle link and whenever one
   * finishes with others pending: it fires only after {@link LINK_WRITE_STALL_MS} without progress, and a firing
   * while no write is pending is ignored. Cheaper per frame than a timer per write.
   */
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly peer: string,
    readonly session: MessagingSession,
    readonly channel: ByteChannel,
    readonly transport: MessagingTransportKind,
    readonly handshakeMs: number,
    /** 2 on `/mmogit/msg/2.0.0`, 1 on `/mmogit/msg/1.0.0`. */
    readonly version: 1 | 2 = 1,
  ) {}

  /**
   * Writes one frame; writes are serialised so records never interleave. A link whose writes stall for
   * {@link LINK_WRITE_STALL_MS} is reset, and its pending writes fail.
   */
  write(frame: LinkFrame): Promise<void> {
    this.writeStarted();
    const next = this.writes.then(() => {
      if (this.closed) throw new MmogitError('ERR_CONNECTION_CLOSED', `link to ${this.peer} is closed`);
      return this.session.send(encodeFrame(frame), NO_SESSION_TIMER);
    });
    this.writes = next.then(
      () => this.writeEnded(),
      () => this.writeEnded(),
    );
    return next;
  }

  private writeStarted(): void {
    this.writing++;
    if (this.writing > 1) return;
    if (this.stallTimer) this.stallTimer.refresh();
    else {
      this.stallTimer = setTimeout(() => this.onStallTimer(), LINK_WRITE_STALL_MS);
      this.stallTimer.unref?.();
    }
  }

  private writeEnded(): void {
    this.writing--;
    if (this.writing > 0) this.stallTimer?.refresh();
  }

  private onStallTimer(): void {
    if (this.writing === 0 || this.closed) return;
    const err = new MmogitError(
      'ERR_TIMEOUT',
      `link to ${this.peer}: writes made no progress for ${LINK_WRITE_STALL_MS} ms`,
      { details: { peer: this.peer, timeoutMs: LINK_WRITE_STALL_MS } },
    );
    void this.close(err, true);
  }

  /** Sends `frame` and waits for the reply registered under `key`; `onSent` runs once the frame is written. */
  async request(key: string, frame: LinkFrame, signal: AbortSignal, onSent?: () => void): Promise<LinkFrame> {
    return (await this.dispatch(key, frame, signal, onSent)).reply;
  }

  /**
   * Sends `frame`, resolving once it is written with the reply registered under `key` still to come (wrapped,
   * so awaiting the write does not await the reply): a caller holding a per-peer lock releases it after the
   * write, and the next request goes out while this one waits for its reply (pipelining).
   */
  async dispatch(
    key: string,
    frame: LinkFrame,
    signal: AbortSignal,
    onSent?: () => void,
  ): Promise<{ reply: Promise<LinkFrame> }> {
    if (signal.aborted) throw abortReason(signal, `request to ${this.peer}`);
    if (this.closed) throw new MmogitError('ERR_CONNECTION_CLOSED', `link to ${this.peer} is closed`);
    const reply = new Promise<LinkFrame>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(key);
        reject(abortReason(signal, `request to ${this.peer}`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(key, {
        resolve: (f) => {
          signal.removeEventListener('abort', onAbort);
          resolve(f);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
    });
    try {
      await this.write(frame);
    } catch (e) {
      this.pending.delete(key);
      reply.catch(() => {});
      throw e;
    }
    onSent?.();
    return { reply };
  }

  /** Settles `key`'s pending request with `frame`; false if nobody waits for it. */
  settle(key: string, frame: LinkFrame): boolean {
    const p = this.pending.get(key);
    if (!p) return false;
    this.pending.delete(key);
    p.resolve(frame);
    return true;
  }

  /**
   * Tears the link down: pending requests fail with `err`. `reset` aborts the stream at once; otherwise the
   * session is closed first (bounded by {@link LINK_CLOSE_GRACE_MS}) so the peer sees an orderly end.
   */
  async close(err: MmogitError, reset: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stallTimer);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (!reset) {
      await Promise.race([
        this.writes.then(() => this.session.close()).catch(() => {}),
        sleep(LINK_CLOSE_GRACE_MS, { unref: true }),
      ]);
    }
    this.channel.abort(err);
  }
}

/**
 * Every open link, and each peer's current one (the link new requests to that peer use). A peer may have
 * several open links for a while (both sides dialled at once); the first stays current until it closes.
 */
export class LinkTable {
  private readonly current = new Map<string, Link>();
  private readonly all = new Set<Link>();

  /** `peer`'s current link, when it has one that is still open. */
  get(peer: string): Link | undefined {
    const link = this.current.get(peer);
    return link && !link.closed ? link : undefined;
  }

  /** Adds `link`; it becomes its peer's current link unless that peer has an open one. */
  add(link: Link): void {
    this.all.add(link);
    if (!this.get(link.peer)) this.current.set(link.peer, link);
  }

  /** Forgets a link that has ended. */
  remove(link: Link): void {
    this.all.delete(link);
    if (this.current.get(link.peer) === link) this.current.delete(link.peer);
  }

  /** Closes every link in an orderly way (each bounded by {@link LINK_CLOSE_GRACE_MS}). */
  async closeAll(err: MmogitError): Promise<void> {
    await Promise.allSettled([...this.all].map((link) => link.close(err, false)));
  }
}
