/**
 * Agent-to-agent messaging over `/mmogit/msg/1.0.0`: signed (domain-separated), carried in a PQ session,
 * acknowledged with a signed ack, de-duplicated by id (exactly once to the application), stored, and queued in
 * a persisted outbox with capped exponential backoff while the peer is unreachable.
 * Wire format: docs/protocol.md §5.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createLogger } from '../_log.js';
import { abortReason, ERROR_CODES, type ErrorCode, MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import {
  DEFAULT_MAX_TEXT_BYTES,
  decodeFrame,
  encodeFrame,
  type MessageEnvelope,
  type MessagingFrame,
  maxFrameBytesFor,
  type SignedAck,
  signAck,
  signMessage,
  textBytes,
  verifyAck,
  verifyMessage,
} from './messaging-envelope.js';
import { pqMessagingSecurity } from './messaging-pq.js';
import type { MessageStore, StoredMessage } from './messaging-store.js';
import { Outbox, type OutboxItem, type OutboxWrite } from './outbox.js';
import { DEFAULT_RATE_LIMIT, KeyedRateLimiter, type RateLimitOptions } from './rate-limit.js';

const log = createLogger('mmogit:agent:messaging');

/** The libp2p protocol id of agent messaging. */
export const MESSAGE_PROTOCOL = '/mmogit/msg/1.0.0';
/** Default bound on `send()`'s first delivery attempt (dial + handshake + ack); after it the message is queued. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
/** Default bound on `ping()`. */
export const DEFAULT_PING_TIMEOUT_MS = 30_000;
/** Default bound on an inbound PQ handshake. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 20_000;
/** Default bound on one background retry attempt. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 30_000;
/** Default first retry delay; doubles per failure up to {@link DEFAULT_MAX_RETRY_DELAY_MS}. */
export const DEFAULT_INITIAL_RETRY_DELAY_MS = 1_000;
/** Retry delay cap: a peer that comes back gets its queued messages within about this long. */
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
/** A message dated further in the future than this is refused (clock skew). */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000;
/** A message older than this is refused (it may have waited in an outbox, so this is generous). */
export const DEFAULT_MAX_AGE_MS = 30 * 24 * 3_600_000;

/** How long an orderly link close may wait for the session's close before the stream is dropped. */
const LINK_CLOSE_GRACE_MS = 500;

/** The transport used for a link. */
export type MessagingTransportKind = 'tor' | 'direct';

/** What the messenger needs from the agent's node: dial a protocol, and handle it. */
export interface MessagingNode {
  /** Opens a stream for `protocol` to the agent at `onion`, as a {@link ByteChannel}. */
  dial(
    onion: string,
    protocol: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ channel: ByteChannel; transport: MessagingTransportKind }>;
  /** Registers the handler for inbound streams of `protocol`. */
  handle(
    protocol: string,
    /** `remoteOnion`: the peer as the transport authenticated it, when it knows (checked against the session). */
    handler: (
      channel: ByteChannel,
      info: { transport: MessagingTransportKind; remoteOnion?: string },
    ) => void,
  ): Promise<void> | void;
  unhandle?(protocol: string): Promise<void> | void;
}

/** What the messenger needs from a secure session (src/pqc's `SecureSession` has this shape). */
export interface MessagingSession {
  readonly peer: { publicKey: Uint8Array; onion: string };
  readonly handshakeMs?: number;
  readonly suite?: string;
  send(payload: Uint8Array): Promise<void>;
  /** The next record, or null when the peer closed the session. */
  receive(): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

/** Session establishment (src/pqc's `initiateSession` / `acceptSession`). */
export interface MessagingSecurity {
  initiate(
    channel: ByteChannel,
    key: AgentKey,
    options: { expectedPeer: string; signal?: AbortSignal; timeoutMs?: number; allowClassical?: boolean },
  ): Promise<MessagingSession>;
  accept(
    channel: ByteChannel,
    key: AgentKey,
    options: { signal?: AbortSignal; timeoutMs?: number; allowClassical?: boolean },
  ): Promise<MessagingSession>;
}

/** Inbound limits. */
export interface MessagingLimits {
  /** Cap on a message's text in UTF-8 bytes (default 64 KiB). */
  maxTextBytes?: number;
  /** Per-peer token bucket for inbound messages and pings. */
  rate?: RateLimitOptions;
  maxFutureSkewMs?: number;
  maxAgeMs?: number;
}

/** Outbox retry policy. */
export interface RetryPolicy {
  initialDelayMs?: number;
  maxDelayMs?: number;
  attemptTimeoutMs?: number;
}

/** A received message as the application sees it. */
export interface ReceivedMessage {
  id: string;
  /** The sender's onion (authenticated by the PQ session and the signature). */
  from: string;
  text: string;
  /** The sender's timestamp, ms. */
  timestamp: number;
  /** The stored signature verifies against `from`'s key (re-checked on every read). */
  verified: boolean;
}

/** Result of {@link Messenger.send}. */
export interface SendResult {
  id: string;
  status: 'delivered' | 'queued';
}

/** Result of {@link Messenger.ping} (what `mmogit tor connect` shows). */
export interface PingResult {
  peer: { onion: string; pubkey: string };
  transport: MessagingTransportKind;
  /** Handshake time of the session used (measured when it was established). */
  handshakeMs: number;
  rttMs: number;
  suite: string;
  /** True when an existing session was reused. */
  reused: boolean;
}

/** Payload of the `delivered` event. */
export interface DeliveredEvent {
  id: string;
  to: string;
  ack: SignedAck;
}

/** Payload of the `queued` event. */
export interface QueuedEvent {
  id: string;
  to: string;
  attempts: number;
  nextAttemptAt: number;
  error: MmogitError;
}

/** Dependencies and settings of a {@link Messenger}. */
export interface MessengerDeps {
  node: MessagingNode;
  key: AgentKey;
  store: MessageStore;
  /** Session layer; default: the hybrid PQ channel of src/pqc ({@link pqMessagingSecurity}). */
  security?: MessagingSecurity;
  outboxDir: string;
  limits?: MessagingLimits;
  retry?: RetryPolicy;
  /** Accept peers that cannot do ML-KEM (classical X25519 only). Default false. */
  allowClassical?: boolean;
}

/** A message waiting for its ack. */
interface QueueEntry {
  item: OutboxItem;
  attempts: number;
  nextAt: number;
  /** The outbox write started by `send()` (absent for items loaded from disk at start). */
  write?: OutboxWrite;
}

interface Pending {
  resolve(frame: MessagingFrame): void;
  reject(err: Error): void;
}

/** One PQ session on one stream to a peer, used in both directions. */
class Link {
  readonly pending = new Map<string, Pending>();
  closed = false;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    readonly peer: string,
    readonly session: MessagingSession,
    readonly channel: ByteChannel,
    readonly transport: MessagingTransportKind,
    readonly handshakeMs: number,
  ) {}

  /** Writes one frame; writes are serialised so records never interleave. */
  write(frame: MessagingFrame): Promise<void> {
    const next = this.writes.then(() => {
      if (this.closed) throw new MmogitError('ERR_CONNECTION_CLOSED', `link to ${this.peer} is closed`);
      return this.session.send(encodeFrame(frame));
    });
    this.writes = next.catch(() => {});
    return next;
  }

  /** Sends `frame` and waits for the reply registered under `key`; `onSent` runs once the frame is written. */
  async request(
    key: string,
    frame: MessagingFrame,
    signal: AbortSignal,
    onSent?: () => void,
  ): Promise<MessagingFrame> {
    if (signal.aborted) throw abortReason(signal, `request to ${this.peer}`);
    if (this.closed) throw new MmogitError('ERR_CONNECTION_CLOSED', `link to ${this.peer} is closed`);
    const reply = new Promise<MessagingFrame>((resolve, reject) => {
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
    return reply;
  }

  /** Settles `key`'s pending request with `frame`; false if nobody waits for it. */
  settle(key: string, frame: MessagingFrame): boolean {
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
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (!reset) {
      await Promise.race([
        this.writes.then(() => this.session.close()).catch(() => {}),
        new Promise((r) => setTimeout(r, LINK_CLOSE_GRACE_MS).unref?.()),
      ]);
    }
    this.channel.abort(err);
  }
}

function remoteError(frame: { code: string; message: string }, peer: string): MmogitError {
  const code: ErrorCode = Object.hasOwn(ERROR_CODES, frame.code) ? (frame.code as ErrorCode) : 'ERR_INTERNAL';
  return new MmogitError(code, `${peer} refused: ${frame.message}`, { details: { peer, remote: true } });
}

/**
 * Sends and receives agent messages. Events:
 * - `message` ({@link ReceivedMessage}): a new verified message, emitted once per (sender, id) ever;
 * - `delivered` ({@link DeliveredEvent}): a sent message was acknowledged (its outbox entry is gone);
 * - `queued` ({@link QueuedEvent}): a delivery attempt failed; the message stays queued for a retry;
 * - `error` ({@link MmogitError}): a peer sent garbage, a store write failed, … (emitted only when someone
 *   listens, so an unhandled `error` never crashes the daemon).
 *
 * @example
 * const m = new Messenger({ node, key, store, security, outboxDir: join(configDir, 'outbox') });
 * m.on('message', (msg) => console.error(msg.from, msg.text));
 * await m.start();
 * await m.send(peerOnion, 'hello'); // { id, status: 'delivered' | 'queued' }
 */
export class Messenger extends EventEmitter {
  readonly outbox: Outbox;
  private readonly key: AgentKey;
  private readonly deps: MessengerDeps;
  private readonly security: MessagingSecurity;
  private readonly maxTextBytes: number;
  private readonly maxFrameBytes: number;
  private readonly maxFutureSkewMs: number;
  private readonly maxAgeMs: number;
  private readonly limiter: KeyedRateLimiter;
  private readonly retry: Required<RetryPolicy>;

  private readonly links = new Map<string, Link>();
  private readonly allLinks = new Set<Link>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly seen = new Set<string>();
  private readonly receiving = new Map<string, Promise<boolean>>();
  private readonly queue = new Map<string, QueueEntry>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private readonly tasks = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private stopper = new AbortController();
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(deps: MessengerDeps) {
    super();
    this.deps = deps;
    this.key = deps.key;
    this.outbox = new Outbox(deps.outboxDir);
    this.maxTextBytes = deps.limits?.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
    this.maxFrameBytes = maxFrameBytesFor(this.maxTextBytes);
    this.security = deps.security ?? pqMessagingSecurity({ maxPayload: this.maxFrameBytes });
    this.maxFutureSkewMs = deps.limits?.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
    this.maxAgeMs = deps.limits?.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.limiter = new KeyedRateLimiter(deps.limits?.rate ?? DEFAULT_RATE_LIMIT);
    this.retry = {
      initialDelayMs: deps.retry?.initialDelayMs ?? DEFAULT_INITIAL_RETRY_DELAY_MS,
      maxDelayMs: deps.retry?.maxDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      attemptTimeoutMs: deps.retry?.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS,
    };
  }

  /** This agent's onion. */
  get onion(): string {
    return this.key.onion;
  }

  /**
   * Loads the ids of already received messages from the store (so nothing is delivered twice across
   * restarts), registers the protocol handler and starts retrying whatever the outbox holds.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new MmogitError('ERR_INTERNAL', 'Messenger.start() called twice');
    this.state = 'running';
    await this.outbox.init();
    for (const rec of await this.deps.store.list()) {
      if (rec.direction === 'in') this.seen.add(seenKey(rec.message.from, rec.message.id));
    }
    await this.deps.node.handle(MESSAGE_PROTOCOL, (channel, info) => {
      this.track(this.acceptInbound(channel, info.transport, info.remoteOnion));
    });
    const { items, corrupt } = await this.outbox.list();
    for (const name of corrupt) {
      this.fail(new MmogitError('ERR_UNTRUSTED_DATA', `outbox file ${name} is corrupt; set aside`));
    }
    const now = Date.now();
    for (const item of items) {
      // Our own outbox could hold another identity's messages if the config dir was reused: skip them.
      if (item.message.from !== this.key.onion) continue;
      this.queue.set(item.message.id, { item, attempts: 0, nextAt: now });
    }
    log('started %s with %d queued', this.key.onion, this.queue.size);
    this.schedule();
  }

  /**
   * Sends `text` to `peerOnion`. The signed message's outbox write and the first delivery attempt (bounded by
   * `timeoutMs`) run at the same time. Returns `delivered` once the peer's signed ack is verified (the peer
   * then holds the message durably, and the outbox write is cancelled or undone), or `queued` when the peer
   * could not be reached, only once the outbox file is durable (the outbox keeps retrying while the messenger
   * runs, and after a restart).
   *
   * @throws `ERR_TOO_LARGE` (text over the cap), `ERR_INVALID_ONION`, `ERR_INVALID_ARGUMENT` (own address),
   *   `ERR_ABORTED` when `signal` fires (the message then stays queued; `details.id` names it), or the outbox
   *   write's error when the peer did not ack and the message could not be queued (`details.status` is
   *   `'failed'`: it is not retried; the peer may still have received it).
   */
  async send(
    peerOnion: string,
    text: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<SendResult> {
    this.requireRunning();
    const to = parseOnionAddress(peerOnion).hostname;
    if (to === this.key.onion) throw new MmogitError('ERR_INVALID_ARGUMENT', 'cannot send a message to self');
    const signed = signMessage(this.key, to, text, { maxTextBytes: this.maxTextBytes });
    const id = signed.message.id;
    // The outbox write runs beside the first attempt: durability is owed only for a message reported `queued`
    // (docs/protocol.md §5.7). A crash before send() answers made no promise; the peer de-duplicates.
    const entry: QueueEntry = {
      item: { ...signed, queuedAt: Date.now() },
      attempts: 0,
      nextAt: Number.POSITIVE_INFINITY,
    };
    // Started once the frame is on its way (its fs calls then do not delay the frame), or when the attempt
    // ends without sending it.
    const startWrite = (): OutboxWrite => {
      if (!entry.write) {
        entry.write = this.outbox.begin(signed, entry.item.queuedAt);
        this.track(entry.write.done);
      }
      return entry.write;
    };
    this.queue.set(id, entry);
    const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS, `send to ${to}`);
    if (await this.attempt(id, signal, startWrite)) return { id, status: 'delivered' };
    const write = startWrite();
    // Not acknowledged: `queued` is a promise to deliver, so it waits until the outbox file is durable.
    let durable: boolean;
    try {
      // The file's content is synced by the write; its name by the directory sync.
      durable = await write.done;
      if (durable) await this.outbox.sync();
    } catch (e) {
      const err = asMmogitError(e);
      // Not persisted, so not queued: stop retrying it (a retry already running may still deliver it).
      if (this.queue.get(id) === entry) this.queue.delete(id);
      throw new MmogitError(err.code, `message ${id} could not be queued: ${err.message}`, {
        cause: e,
        details: { id, status: 'failed' },
      });
    }
    // A write is cancelled only once an ack arrived (a retry got it meanwhile).
    const delivered = !durable || !this.queue.has(id);
    if (!delivered && options.signal?.aborted) {
      const err = abortReason(options.signal, `send to ${to}`);
      throw new MmogitError(err.code, `${err.message} (message ${id} stays queued)`, {
        cause: err,
        details: { id, status: 'queued' },
      });
    }
    return { id, status: delivered ? 'delivered' : 'queued' };
  }

  /**
   * Checks that `peerOnion` is reachable: establishes (or reuses) the PQ session and times a ping/pong.
   * With `fresh`, an existing session is closed first so the handshake is measured anew.
   */
  async ping(
    peerOnion: string,
    options: { signal?: AbortSignal; timeoutMs?: number; fresh?: boolean } = {},
  ): Promise<PingResult> {
    this.requireRunning();
    const peer = parseOnionAddress(peerOnion).hostname;
    const signal = AbortSignal.any([
      withTimeout(options.signal, options.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS, `ping ${peer}`),
      this.stopper.signal,
    ]);
    return this.exclusive(peer, signal, async () => {
      let reused = true;
      let link = this.links.get(peer);
      if (options.fresh && link) {
        await link.close(new MmogitError('ERR_CONNECTION_CLOSED', 'replaced by a fresh session'), false);
        link = undefined;
      }
      if (!link || link.closed) {
        link = await this.connect(peer, signal);
        reused = false;
      }
      const n = randomBytes(16).toString('hex');
      const t0 = performance.now();
      try {
        await link.request(`ping:${n}`, { t: 'ping', n }, signal);
      } catch (e) {
        void link.close(asMmogitError(e), true);
        throw e;
      }
      const rttMs = performance.now() - t0;
      return {
        peer: {
          onion: link.session.peer.onion,
          pubkey: Buffer.from(link.session.peer.publicKey).toString('hex'),
        },
        transport: link.transport,
        handshakeMs: link.handshakeMs,
        rttMs,
        suite: link.session.suite ?? 'unknown',
        reused,
      };
    });
  }

  /** Received messages from the store, oldest first, signatures re-verified. */
  async inbox(options: { since?: number; from?: string; limit?: number } = {}): Promise<ReceivedMessage[]> {
    const from = options.from ? parseOnionAddress(options.from).hostname : undefined;
    const out = new Map<string, ReceivedMessage>();
    for (const rec of await this.deps.store.list()) {
      if (rec.direction !== 'in' || rec.message.to !== this.key.onion) continue;
      const m = rec.message;
      if (from && m.from !== from) continue;
      if (options.since !== undefined && m.timestamp < options.since) continue;
      const k = seenKey(m.from, m.id);
      if (out.has(k)) continue;
      out.set(k, {
        id: m.id,
        from: m.from,
        text: m.text,
        timestamp: m.timestamp,
        verified: verifyMessage(rec),
      });
    }
    const list = [...out.values()].sort((a, b) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : 1));
    return options.limit !== undefined ? list.slice(-options.limit) : list;
  }

  /** Ids of messages still waiting for an ack. */
  pending(): { id: string; to: string; attempts: number; nextAttemptAt: number }[] {
    return [...this.queue.values()].map((q) => ({
      id: q.item.message.id,
      to: q.item.message.to,
      attempts: q.attempts,
      nextAttemptAt: q.nextAt,
    }));
  }

  /** Stops retrying, unregisters the protocol and closes every session. Queued messages stay on disk. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    this.stopper.abort(new MmogitError('ERR_ABORTED', 'messenger stopped'));
    if (wasRunning) await Promise.resolve(this.deps.node.unhandle?.(MESSAGE_PROTOCOL)).catch(() => {});
    const stopped = new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped');
    await Promise.allSettled([...this.allLinks].map((link) => link.close(stopped, false)));
    await Promise.allSettled([...this.tasks]);
    await this.deps.store.flush?.().catch((e: unknown) => this.fail(asMmogitError(e)));
    await this.deps.store.close?.().catch((e: unknown) => this.fail(asMmogitError(e)));
  }

  // ——— sending ———

  /**
   * One delivery attempt of queued message `id`; true when acknowledged. Never throws. `onSent` runs once the
   * message frame is written.
   */
  private attempt(id: string, signal: AbortSignal, onSent?: () => void): Promise<boolean> {
    const running = this.inflight.get(id);
    if (running) return running;
    const entry = this.queue.get(id);
    if (!entry) return Promise.resolve(true);
    const p = (async () => {
      const { message, sig } = entry.item;
      const combined = AbortSignal.any([signal, this.stopper.signal]);
      try {
        const ack = await this.deliver({ message, sig }, combined, onSent);
        this.queue.delete(id);
        // The peer holds it durably now: an outbox write still in progress is no longer owed.
        entry.write?.cancel();
        // Keeping the sent copy is not part of the round trip (see archive()).
        this.track(this.archive(entry, ack));
        this.emit('delivered', { id, to: message.to, ack } satisfies DeliveredEvent);
        return true;
      } catch (e) {
        const err = asMmogitError(e);
        entry.attempts += 1;
        const delay = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (entry.attempts - 1));
        // Jitter (50–100 %) keeps many agents from retrying in lockstep after an outage.
        entry.nextAt = Date.now() + Math.round(delay * (0.5 + Math.random() * 0.5));
        log(
          'delivery of %s to %s failed (%s); retry in %d ms',
          id,
          message.to,
          err.code,
          entry.nextAt - Date.now(),
        );
        if (this.state === 'running') {
          this.emit('queued', {
            id,
            to: message.to,
            attempts: entry.attempts,
            nextAttemptAt: entry.nextAt,
            error: err,
          } satisfies QueuedEvent);
        }
        return false;
      } finally {
        this.inflight.delete(id);
        this.schedule();
      }
    })();
    this.inflight.set(id, p);
    this.track(p);
    return p;
  }

  /** Sends one signed message over the peer's link and returns its verified ack, then stores and dequeues it. */
  private async deliver(
    signed: { message: MessageEnvelope; sig: string },
    signal: AbortSignal,
    onSent?: () => void,
  ): Promise<SignedAck> {
    const peer = signed.message.to;
    const frame = await this.exclusive(peer, signal, async () => {
      let link = this.links.get(peer);
      if (!link || link.closed) link = await this.connect(peer, signal);
      try {
        return await link.request(
          `msg:${signed.message.id}`,
          { t: 'msg', m: signed.message, sig: signed.sig },
          signal,
          onSent,
        );
      } catch (e) {
        const err = asMmogitError(e);
        // No reply in time, or the stream broke: start over with a new stream next time.
        void link.close(err, true);
        throw err;
      }
    });
    if (frame.t === 'err') throw remoteError(frame, peer);
    if (frame.t !== 'ack') throw new MmogitError('ERR_BAD_FRAME', `expected an ack from ${peer}`);
    const ack: SignedAck = { ack: frame.a, sig: frame.sig };
    // Link.settle already matched the id; the signature and signer are checked here.
    if (ack.ack.by !== peer || ack.ack.id !== signed.message.id || !verifyAck(ack)) {
      const err = new MmogitError('ERR_BAD_SIGNATURE', `ack from ${peer} does not verify`, {
        details: { peer },
      });
      void this.links.get(peer)?.close(err, true);
      throw err;
    }
    return ack;
  }

  /**
   * Stores an acknowledged message's sent copy, then drops its outbox entry (waiting for a write that was too
   * far along to cancel, so no file lingers); on failure it is queued again. A crash before the copy is
   * journaled re-sends the message if its outbox file was written (the peer de-duplicates and acks again);
   * otherwise only the sender's copy is lost, never the message.
   */
  private async archive(entry: QueueEntry, ack: SignedAck): Promise<void> {
    const { message, sig } = entry.item;
    try {
      await this.deps.store.append({ direction: 'out', message, sig, at: Date.now(), ack });
      if (entry.write) await this.outbox.discard(entry.write);
      else await this.outbox.remove(message.id);
    } catch (e) {
      this.fail(asMmogitError(e));
      if (this.state === 'running' && !this.queue.has(message.id)) {
        entry.attempts += 1;
        entry.nextAt = Date.now() + this.retry.maxDelayMs;
        this.queue.set(message.id, entry);
        this.schedule();
      }
    }
  }

  /** Dials `peer` and runs the PQ handshake; the new link becomes the peer's current one. */
  private async connect(peer: string, signal: AbortSignal): Promise<Link> {
    const t0 = performance.now();
    const { channel, transport } = await this.deps.node.dial(peer, MESSAGE_PROTOCOL, { signal });
    let session: MessagingSession;
    try {
      session = await this.security.initiate(channel, this.key, {
        expectedPeer: peer,
        signal,
        allowClassical: this.deps.allowClassical ?? false,
      });
    } catch (e) {
      channel.abort(asMmogitError(e));
      throw e;
    }
    if (session.peer.onion !== peer) {
      const err = new MmogitError(
        'ERR_HANDSHAKE',
        `dialled ${peer} but the session is with ${session.peer.onion}`,
      );
      channel.abort(err);
      throw err;
    }
    const link = new Link(peer, session, channel, transport, session.handshakeMs ?? performance.now() - t0);
    this.adopt(link);
    return link;
  }

  // ——— receiving ———

  private async acceptInbound(
    channel: ByteChannel,
    transport: MessagingTransportKind,
    remoteOnion: string | undefined,
  ): Promise<void> {
    const t0 = performance.now();
    let session: MessagingSession;
    try {
      session = await this.security.accept(channel, this.key, {
        signal: AbortSignal.any([
          withTimeout(undefined, DEFAULT_ACCEPT_TIMEOUT_MS, 'inbound handshake'),
          this.stopper.signal,
        ]),
        timeoutMs: DEFAULT_ACCEPT_TIMEOUT_MS,
        allowClassical: this.deps.allowClassical ?? false,
      });
    } catch (e) {
      const err = asMmogitError(e);
      channel.abort(err);
      this.fail(err);
      return;
    }
    if (this.state !== 'running') {
      channel.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped'));
      return;
    }
    const peer = session.peer.onion;
    if (remoteOnion !== undefined && remoteOnion !== peer) {
      // The transport (libp2p noise) and the PQ handshake authenticated different keys: a relay or a bug.
      const err = new MmogitError(
        'ERR_HANDSHAKE',
        `transport peer ${remoteOnion} differs from session peer ${peer}`,
        {
          details: { peer },
        },
      );
      channel.abort(err);
      this.fail(err, peer);
      return;
    }
    const link = new Link(peer, session, channel, transport, session.handshakeMs ?? performance.now() - t0);
    this.adopt(link);
    // The peer is evidently up: whatever waits for it goes out now instead of at its backoff time.
    let due = false;
    for (const q of this.queue.values()) {
      if (q.item.message.to === peer && !this.inflight.has(q.item.message.id)) {
        q.nextAt = Date.now();
        due = true;
      }
    }
    if (due) this.schedule();
  }

  private adopt(link: Link): void {
    if (this.state !== 'running') {
      void link.close(new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped'), true);
      return;
    }
    this.allLinks.add(link);
    const current = this.links.get(link.peer);
    if (!current || current.closed) this.links.set(link.peer, link);
    this.track(this.readLoop(link));
  }

  private async readLoop(link: Link): Promise<void> {
    let reason = new MmogitError('ERR_CONNECTION_CLOSED', `${link.peer} closed the session`);
    try {
      for (;;) {
        const payload = await link.session.receive();
        if (payload === null) break;
        await this.onFrame(link, payload);
        if (link.closed) return;
      }
    } catch (e) {
      reason = asMmogitError(e);
      if (!link.closed && this.state === 'running') {
        // The PQ layer refused a record (forged, truncated, oversized): the peer or the path is bad.
        if (reason.category === 'security') this.fail(reason, link.peer);
        await link.close(reason, true);
      }
    } finally {
      await link.close(reason, false);
      this.allLinks.delete(link);
      if (this.links.get(link.peer) === link) this.links.delete(link.peer);
    }
  }

  private async onFrame(link: Link, payload: Uint8Array): Promise<void> {
    let frame: MessagingFrame;
    try {
      frame = decodeFrame(payload, this.maxFrameBytes);
    } catch (e) {
      await this.reject(link, asMmogitError(e));
      return;
    }
    switch (frame.t) {
      case 'msg':
        await this.onMessage(link, frame.m, frame.sig);
        return;
      case 'ack':
        if (!link.settle(`msg:${frame.a.id}`, frame)) log('late ack %s from %s', frame.a.id, link.peer);
        return;
      case 'err':
        if (frame.id && link.settle(`msg:${frame.id}`, frame)) return;
        log('error from %s: %s %s', link.peer, frame.code, frame.message);
        return;
      case 'ping':
        if (!this.limiter.take(link.peer)) {
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

  private async onMessage(link: Link, m: MessageEnvelope, sig: string): Promise<void> {
    const peer = link.peer;
    if (!this.limiter.take(peer)) {
      const wait = this.limiter.retryAfterMs(peer);
      await this.refuse(
        link,
        m.id,
        new MmogitError('ERR_RATE_LIMITED', `rate limited, retry in ${wait} ms`, {
          details: { retryAfterMs: wait },
        }),
      );
      return;
    }
    // Checks that only a broken or malicious peer fails: refuse and drop the stream.
    if (m.from !== peer) {
      await this.reject(
        link,
        new MmogitError(
          'ERR_UNTRUSTED_DATA',
          `message claims to be from ${m.from} but the session is with ${peer}`,
        ),
      );
      return;
    }
    if (m.to !== this.key.onion) {
      await this.reject(link, new MmogitError('ERR_UNTRUSTED_DATA', `message is addressed to ${m.to}`));
      return;
    }
    const size = textBytes(m.text);
    if (size > this.maxTextBytes) {
      await this.reject(
        link,
        new MmogitError('ERR_TOO_LARGE', `message text is ${size} bytes, the limit is ${this.maxTextBytes}`, {
          details: { bytes: size, limit: this.maxTextBytes },
        }),
      );
      return;
    }
    if (!verifyMessage({ message: m, sig })) {
      await this.reject(
        link,
        new MmogitError('ERR_BAD_SIGNATURE', `message ${m.id} signature does not verify`),
      );
      return;
    }
    // Clock problems are honest mistakes: refuse the message but keep the stream.
    const now = Date.now();
    if (m.timestamp > now + this.maxFutureSkewMs || m.timestamp < now - this.maxAgeMs) {
      await this.refuse(
        link,
        m.id,
        new MmogitError(
          'ERR_UNTRUSTED_DATA',
          `message timestamp ${m.timestamp} is outside the accepted window`,
        ),
      );
      return;
    }
    const k = seenKey(m.from, m.id);
    // The same message may arrive on two links at once (sender retried after a lost ack): process it once.
    let work = this.receiving.get(k);
    const mine = !work;
    if (!work) {
      work = this.storeNew(k, { message: m, sig }).finally(() => this.receiving.delete(k));
      this.receiving.set(k, work);
    }
    // The store's write is on the disk now: sign the ack meanwhile; only sending it waits for durability.
    const ack = toAckFrame(signAck(this.key, m.id));
    let fresh: boolean;
    try {
      fresh = await work;
    } catch (e) {
      const err = asMmogitError(e);
      this.fail(err, peer);
      // No ack: the sender keeps it queued and retries.
      await this.refuse(link, m.id, new MmogitError('ERR_INTERNAL', 'could not store the message'));
      return;
    }
    await link.write({ t: 'ack', ...ack }).catch(() => {});
    // Stored first, so exactly once; handed to the application after the ack so its listeners are not on the
    // sender's round trip.
    if (mine && fresh) this.deliverToApp(m);
  }

  /** Stores a message not seen before; true when it was new. Issues the store's write synchronously. */
  private async storeNew(k: string, signed: { message: MessageEnvelope; sig: string }): Promise<boolean> {
    if (this.seen.has(k)) return false;
    const rec: StoredMessage = { direction: 'in', ...signed, at: Date.now() };
    await this.deps.store.append(rec);
    this.seen.add(k);
    return true;
  }

  private deliverToApp(m: MessageEnvelope): void {
    try {
      this.emit('message', {
        id: m.id,
        from: m.from,
        text: m.text,
        timestamp: m.timestamp,
        verified: true,
      } satisfies ReceivedMessage);
    } catch (e) {
      // A throwing listener must not take the session down (the message is stored and acked).
      this.fail(asMmogitError(e));
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
    this.fail(withPeer, link.peer);
    await Promise.race([
      link.write({ t: 'err', code: err.code, message: err.message }).catch(() => {}),
      new Promise((r) => setTimeout(r, 200).unref?.()),
    ]);
    await link.close(withPeer, true);
  }

  // ——— plumbing ———

  private fail(err: MmogitError, peer?: string): void {
    log('error%s: %s %s', peer ? ` (${peer})` : '', err.code, err.message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Runs `fn` with the peer's lock held: one request at a time per peer, and a single dial. */
  private async exclusive<T>(peer: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(peer) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.locks.set(peer, tail);
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(abortReason(signal, `waiting to send to ${peer}`));
        const onAbort = () => reject(abortReason(signal, `waiting to send to ${peer}`));
        signal.addEventListener('abort', onAbort, { once: true });
        prev.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      return await fn();
    } finally {
      release();
      // Nobody queued behind us: drop the entry so the map does not grow with every peer ever contacted.
      if (this.locks.get(peer) === tail) this.locks.delete(peer);
    }
  }

  /** Arms the retry timer for the earliest due queued message. */
  private schedule(): void {
    if (this.state !== 'running') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const [id, q] of this.queue) if (!this.inflight.has(id) && q.nextAt < next) next = q.nextAt;
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.runDue(), Math.max(0, next - Date.now()));
    this.timer.unref?.();
  }

  private runDue(): void {
    this.timer = undefined;
    if (this.state !== 'running') return;
    const now = Date.now();
    for (const [id, q] of this.queue) {
      if (q.nextAt <= now && !this.inflight.has(id)) {
        this.attempt(id, AbortSignal.timeout(this.retry.attemptTimeoutMs));
      }
    }
    this.schedule();
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch(() => {}).finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }

  private requireRunning(): void {
    if (this.state !== 'running') {
      throw new MmogitError(
        'ERR_INTERNAL',
        `messenger is ${this.state === 'new' ? 'not started' : 'stopped'}`,
      );
    }
  }
}

function seenKey(from: string, id: string): string {
  return `${from}/${id}`;
}

function toAckFrame(signed: SignedAck): { a: SignedAck['ack']; sig: string } {
  return { a: signed.ack, sig: signed.sig };
}

function asMmogitError(e: unknown): MmogitError {
  if (e instanceof MmogitError) return e;
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return new MmogitError('ERR_TIMEOUT', e.message, { cause: e });
  }
  return new MmogitError('ERR_INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
