/**
 * The receiving side of a link: decodes each record, answers pings, settles replies to our requests, and runs
 * an incoming message through the checks ({@link checkInbound}), de-duplication, storage and the ack —
 * stored first, so exactly once (docs/protocol.md §5.5–5.6).
 * @module
 */
import { sleep } from '../_async.js';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { asMmogitError } from './_errors.js';
import { decodeFrame, parseEnvelope, signAck } from './messaging-envelope.js';
import { type AnySignedMessage, parseAnyEnvelope } from './messaging-envelope-v2.js';
import { checkInbound, type InboundLimits } from './messaging-inbound.js';
import type { Link, LinkFrame } from './messaging-link.js';
import type { MessageStore } from './messaging-store.js';
import type { ReceivedMessage } from './messaging-types.js';
import { encodeCursor, toReceived } from './messaging-view.js';
import type { KeyedRateLimiter } from './rate-limit.js';

const log = createLogger('mmogit:agent:messaging');

/** How long a reject's best-effort `err` frame may take before the stream is reset. */
const REJECT_NOTICE_MS = 200;

/** What the {@link Receiver} needs from the messenger. */
export interface ReceiverDeps {
  key: AgentKey;
  store: MessageStore;
  limits: InboundLimits;
  maxFrameBytes: number;
  limiter: KeyedRateLimiter;
  now: () => number;
  /** A new message, stored and acked: hand it (and its signed envelope) to the application. */
  onMessage(m: ReceivedMessage, signed: AnySignedMessage): void;
  fail(err: MmogitError, peer?: string): void;
  /** A message refused or rejected, by error code (the agent's metrics count it). */
  onRefused?(code: string): void;
}

/** The key of a received message: `(from, id)`. */
export function seenKey(from: string, id: string): string {
  return `${from}/${id}`;
}

/** Handles the records arriving on links. */
export class Receiver {
  private readonly seen = new Set<string>();
  private readonly receiving = new Map<string, Promise<boolean>>();
  /** The newest receive time given out: each stored message gets a later one, so cursors never tie. */
  private lastAt = 0;

  constructor(private readonly deps: ReceiverDeps) {}

  /** Marks a message as already received (loaded from the store at start), at receive time `at`. */
  markSeen(from: string, id: string, at: number): void {
    this.seen.add(seenKey(from, id));
    if (at > this.lastAt) this.lastAt = at;
  }

  /** Handles one record of `link`. Never throws; a protocol violation closes `link`. */
  async onRecord(link: Link, payload: Uint8Array): Promise<void> {
    let frame: LinkFrame;
    try {
      // A version 1 link carries version 1 envelopes only, exactly as a version 1 agent checks them.
      frame = decodeFrame(
        payload,
        this.deps.maxFrameBytes,
        link.version === 2 ? parseAnyEnvelope : parseEnvelope,
      );
    } catch (e) {
      await this.reject(link, asMmogitError(e));
      return;
    }
    switch (frame.t) {
      case 'msg':
        await this.onMessage(link, { message: frame.m, sig: frame.sig });
        return;
      case 'ack':
        if (!link.settle(`msg:${frame.a.id}`, frame)) log('late ack %s from %s', frame.a.id, link.peer);
        return;
      case 'err':
        if (frame.id && link.settle(`msg:${frame.id}`, frame)) return;
        log('error from %s: %s %s', link.peer, frame.code, frame.message);
        return;
      case 'ping':
        if (!this.deps.limiter.take(link.peer)) {
          await this.refuse(link, undefined, new MmogitError('ERR_RATE_LIMITED', 'too many requests'));
          return;
        }
        await link.write({ t: 'pong', n: frame.n }).catch(() => {});
        return;
      case 'pong':
        link.settle(`ping:${frame.n}`, frame);
        return;
    }
  }

  private async onMessage(link: Link, signed: AnySignedMessage): Promise<void> {
    const peer = link.peer;
    const m = signed.message;
    const allowed = this.deps.limiter.take(peer);
    const check = checkInbound(
      signed,
      {
        peer,
        self: this.deps.key.onion,
        now: this.deps.now(),
        rate: allowed ? { allowed } : { allowed, retryAfterMs: this.deps.limiter.retryAfterMs(peer) },
      },
      this.deps.limits,
    );
    if (check.verdict !== 'accept') this.deps.onRefused?.(check.error.code);
    if (check.verdict === 'reject') return this.reject(link, check.error);
    if (check.verdict === 'refuse') return this.refuse(link, m.id, check.error);
    const k = seenKey(m.from, m.id);
    // The same message may arrive on two links at once (sender retried after a lost ack): process it once.
    let work = this.receiving.get(k);
    const mine = !work;
    // Receive times strictly increase in the order messages are handed to the store (which keeps that order).
    const at = Math.max(this.deps.now(), this.lastAt + 1);
    if (!work) {
      work = this.storeNew(k, signed, at).finally(() => this.receiving.delete(k));
      this.receiving.set(k, work);
    }
    // The store's write is on the disk now: sign the ack meanwhile; only sending it waits for durability.
    const ack = signAck(this.deps.key, m.id, this.deps.now());
    let fresh: boolean;
    try {
      fresh = await work;
    } catch (e) {
      this.deps.fail(asMmogitError(e), peer);
      this.deps.onRefused?.(asMmogitError(e).code);
      // No ack: the sender keeps it queued and retries.
      await this.refuse(link, m.id, new MmogitError('ERR_INTERNAL', 'could not store the message'));
      return;
    }
    await link.write({ t: 'ack', a: ack.ack, sig: ack.sig }).catch(() => {});
    // Stored first, so exactly once; handed to the application after the ack so its listeners are not on the
    // sender's round trip.
    if (mine && fresh) this.deliverToApp(signed, at);
  }

  /** Stores a message not seen before; true when it was new. Issues the store's write synchronously. */
  private async storeNew(k: string, signed: AnySignedMessage, at: number): Promise<boolean> {
    if (this.seen.has(k)) return false;
    this.lastAt = at;
    await this.deps.store.append({ direction: 'in', ...signed, at });
    this.seen.add(k);
    return true;
  }

  /**
   * Stores and hands on a message that came by another protocol, already checked by it (a file's offer, once
   * its file is stored: files-receive.ts). False when it was stored before.
   */
  async storeVerified(signed: AnySignedMessage): Promise<boolean> {
    const at = Math.max(this.deps.now(), this.lastAt + 1);
    const fresh = await this.storeNew(seenKey(signed.message.from, signed.message.id), signed, at);
    if (fresh) this.deliverToApp(signed, at);
    return fresh;
  }

  private deliverToApp(signed: AnySignedMessage, at: number): void {
    const m = signed.message;
    try {
      this.deps.onMessage(toReceived(m, true, { at, cursor: encodeCursor(at, m.id) }), signed);
    } catch (e) {
      // A throwing listener must not take the session down (the message is stored and acked).
      this.deps.fail(asMmogitError(e));
    }
  }

  /** Tells the peer why its request was refused, keeping the stream. */
  private async refuse(link: Link, id: string | undefined, err: MmogitError): Promise<void> {
    await link
      .write({ t: 'err', ...(id ? { id } : {}), code: err.code, message: err.message })
      .catch(() => {});
  }

  /** A protocol violation: report it, tell the peer, reset the stream. The node keeps running. */
  private async reject(link: Link, err: MmogitError): Promise<void> {
    const withPeer = new MmogitError(err.code, `${link.peer}: ${err.message}`, {
      cause: err,
      details: { ...err.details, peer: link.peer },
    });
    this.deps.fail(withPeer, link.peer);
    await Promise.race([
      link.write({ t: 'err', code: err.code, message: err.message }).catch(() => {}),
      sleep(REJECT_NOTICE_MS, { unref: true }),
    ]);
    await link.close(withPeer, true);
  }
}
