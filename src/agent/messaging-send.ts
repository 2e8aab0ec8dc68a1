/**
 * The send path and the retry queue: a signed message's first attempt runs beside its outbox write, a message
 * that was not acknowledged is retried with capped exponential backoff and jitter until it is, and an
 * acknowledged one is archived and leaves the outbox (docs/protocol.md §5.7). How one attempt reaches the peer
 * is the messenger's `deliver`; this module decides when to attempt and what the caller is told.
 * @module
 */
import { type AbortOptions, backoffDelay } from '../_async.js';
import { createLogger } from '../_log.js';
import { abortReason, deadline, MmogitError } from '../errors.js';
import { asMmogitError } from './_errors.js';
import type { SignedAck } from './messaging-envelope.js';
import type { AnySignedMessage } from './messaging-envelope-v2.js';
import type { MessageStore } from './messaging-store.js';
import type {
  DeliveredEvent,
  PendingMessage,
  QueuedEvent,
  RefusedEvent,
  RetryPolicy,
  SendResult,
} from './messaging-types.js';
import type { Outbox, OutboxItem, OutboxWrite } from './outbox.js';

const log = createLogger('mmogit:agent:messaging');

/** Default bound on `send()`'s first delivery attempt (dial + handshake + ack); after it the message is queued. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
/** Default bound on one background retry attempt. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 30_000;
/** Default first retry delay; doubles per failure up to {@link DEFAULT_MAX_RETRY_DELAY_MS}. */
export const DEFAULT_INITIAL_RETRY_DELAY_MS = 1_000;
/** Retry delay cap: a peer that comes back gets its queued messages within about this long. */
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;
/**
 * A message acked within this long of its frame being written never starts its outbox write: on a fast path the
 * sender's disk is not touched at all (an open, write, fsync, close and unlink per message before, which with
 * 100 sends in flight also queued the journal writes behind them in libuv's thread pool). Durability is owed
 * only for a `queued` answer, which still waits for the write (docs/protocol.md §5.7.1).
 */
export const DEFAULT_OUTBOX_GRACE_MS = 200;

/**
 * One delivery attempt: sends the message, resolves with the peer's verified ack and the message as sent (a
 * version 1 peer gets the version 1 form). Rejects `ERR_PEER_UNSUPPORTED` when the peer can never take it.
 */
export type Deliver = (
  signed: AnySignedMessage,
  signal: AbortSignal,
  onSent?: () => void,
) => Promise<{ ack: SignedAck; sent: AnySignedMessage }>;

/** Resolves on the event loop's next turn, after every promise callback queued now (send()'s answer too). */
function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Errors after which a message is never retried: the peer's answer will not change. */
const FINAL_CODES: readonly string[] = ['ERR_PEER_UNSUPPORTED'];

/** What the {@link SendQueue} needs from the messenger. */
export interface SendQueueDeps {
  outbox: Outbox;
  store: MessageStore;
  deliver: Deliver;
  retry?: RetryPolicy;
  now: () => number;
  running(): boolean;
  /** Fires when the messenger stops (attempts give up then). */
  stopSignal: AbortSignal;
  track(task: Promise<unknown>): void;
  fail(err: MmogitError): void;
  onDelivered(e: DeliveredEvent): void;
  onQueued(e: QueuedEvent): void;
  onRefused(e: RefusedEvent): void;
}

/** A message waiting for its ack. */
interface QueueEntry {
  item: OutboxItem;
  attempts: number;
  nextAt: number;
  /** The outbox write started for a message of `send()` (absent for items loaded from disk at start). */
  write?: OutboxWrite;
  /** A message of `send()`: it has an outbox file only once `write` was started. */
  fresh?: boolean;
  /** Set when the peer refused the message for good (it has left the queue). */
  refused?: MmogitError;
  /** Why the last attempt failed. */
  lastError?: MmogitError;
}

/** The messages not yet acknowledged, their retry timer and the attempts in flight. */
export class SendQueue {
  private readonly retry: Required<RetryPolicy>;
  private readonly queue = new Map<string, QueueEntry>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: SendQueueDeps) {
    this.retry = {
      initialDelayMs: deps.retry?.initialDelayMs ?? DEFAULT_INITIAL_RETRY_DELAY_MS,
      maxDelayMs: deps.retry?.maxDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      attemptTimeoutMs: deps.retry?.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS,
      outboxGraceMs: deps.retry?.outboxGraceMs ?? DEFAULT_OUTBOX_GRACE_MS,
    };
  }

  /** Queues items found in the outbox at start, due at once. */
  load(items: OutboxItem[]): void {
    const now = this.deps.now();
    for (const item of items) this.queue.set(item.message.id, { item, attempts: 0, nextAt: now });
    this.schedule();
  }

  /**
   * Sends `signed`: the outbox write runs beside the first attempt (bounded by `timeoutMs`). `delivered` once
   * the peer's signed ack is verified (the outbox write is then cancelled or undone), `queued` only once the
   * outbox file is durable. See `Messenger.send` for the errors.
   */
  async send(signed: AnySignedMessage, options: AbortOptions = {}): Promise<SendResult> {
    const id = signed.message.id;
    const to = signed.message.to;
    const thread = signed.message.v === 2 ? signed.message.thread : id;
    // The outbox write runs beside the first attempt: durability is owed only for a message reported `queued`
    // (docs/protocol.md §5.7). A crash before send() answers made no promise; the peer de-duplicates.
    const entry: QueueEntry = {
      item: { ...signed, queuedAt: this.deps.now() },
      attempts: 0,
      nextAt: Number.POSITIVE_INFINITY,
      fresh: true,
    };
    // Started when the ack has not come within the grace after the frame went out (its fs calls then never
    // delay the frame, and a quick ack saves them), or when the attempt ends without an ack.
    const startWrite = (): OutboxWrite => {
      if (!entry.write) {
        entry.write = this.deps.outbox.begin(signed, entry.item.queuedAt);
        this.deps.track(entry.write.done);
      }
      return entry.write;
    };
    let grace: NodeJS.Timeout | undefined;
    const onSent = () => {
      if (this.retry.outboxGraceMs <= 0) {
        startWrite();
        return;
      }
      grace = setTimeout(() => {
        // Acked (or refused) meanwhile: the entry has left the queue and no write is owed.
        if (this.queue.get(id) === entry) startWrite();
      }, this.retry.outboxGraceMs);
      grace.unref?.();
    };
    this.queue.set(id, entry);
    const bound = deadline(options.signal, options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS, `send to ${to}`);
    let acked: boolean;
    try {
      acked = await this.attempt(id, bound.signal, onSent);
    } finally {
      bound.clear();
    }
    clearTimeout(grace);
    if (acked) return { id, status: 'delivered', thread };
    if (entry.refused) {
      const err = entry.refused;
      throw new MmogitError(err.code, err.message, {
        cause: err,
        details: { ...err.details, id, status: 'refused' },
      });
    }
    const write = startWrite();
    // Not acknowledged: `queued` is a promise to deliver, so it waits until the outbox file is durable.
    let durable: boolean;
    try {
      // The file's content is synced by the write; its name by the directory sync.
      durable = await write.done;
      if (durable) await this.deps.outbox.sync();
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
    return { id, status: delivered ? 'delivered' : 'queued', thread };
  }

  /**
   * The peer (or, without `peer`, our own tor) is evidently up: whatever waits goes out now instead of at its
   * backoff time.
   */
  expedite(peer?: string): void {
    let due = false;
    for (const q of this.queue.values()) {
      if ((peer === undefined || q.item.message.to === peer) && !this.inflight.has(q.item.message.id)) {
        q.nextAt = this.deps.now();
        due = true;
      }
    }
    if (due) this.schedule();
  }

  /** Messages still waiting for an ack, oldest first. */
  pending(): PendingMessage[] {
    return [...this.queue.values()]
      .map((q) => {
        const m = q.item.message;
        const text = m.v === 1 ? m.text : typeof m.body === 'string' ? m.body : JSON.stringify(m.body);
        return {
          id: m.id,
          to: m.to,
          attempts: q.attempts,
          nextAttemptAt: q.nextAt,
          queuedAt: q.item.queuedAt,
          type: m.v === 1 ? 'message' : m.type,
          preview: text.length > 80 ? `${text.slice(0, 79)}…` : text,
          ...(q.lastError ? { lastError: { code: q.lastError.code, message: q.lastError.message } } : {}),
        };
      })
      .sort((a, b) => a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * Attempts queued message `id` now (bounded by `timeoutMs`) instead of at its backoff time: `delivered`, or
   * `queued` with the attempt's error. `ERR_NOT_FOUND` when no such message waits.
   */
  async retryNow(
    id: string,
    options: AbortOptions = {},
  ): Promise<{
    id: string;
    status: 'delivered' | 'queued' | 'refused';
    error?: { code: string; message: string };
  }> {
    const entry = this.queue.get(id);
    if (!entry) throw new MmogitError('ERR_NOT_FOUND', `no queued message ${id}`, { details: { id } });
    const bound = deadline(options.signal, options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS, `retry ${id}`);
    let acked: boolean;
    try {
      acked = await this.attempt(id, bound.signal);
    } finally {
      bound.clear();
    }
    if (acked) return { id, status: 'delivered' };
    const err = entry.refused ?? entry.lastError;
    const error = err ? { error: { code: err.code, message: err.message } } : {};
    return { id, status: entry.refused ? 'refused' : 'queued', ...error };
  }

  /**
   * Gives up on queued message `id`: out of the queue and the outbox (an attempt already running may still
   * deliver it). `ERR_NOT_FOUND` when no such message waits.
   */
  async drop(id: string): Promise<{ id: string; to: string }> {
    const entry = this.queue.get(id);
    if (!entry) throw new MmogitError('ERR_NOT_FOUND', `no queued message ${id}`, { details: { id } });
    this.queue.delete(id);
    if (entry.write) await this.deps.outbox.discard(entry.write);
    else await this.deps.outbox.remove(id);
    log('message %s to %s dropped from the outbox', id, entry.item.message.to);
    this.schedule();
    return { id, to: entry.item.message.to };
  }

  /** Stops the retry timer (attempts in flight end with the messenger's stop signal). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

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
      const combined = AbortSignal.any([signal, this.deps.stopSignal]);
      try {
        const { ack, sent } = await this.deps.deliver({ message, sig }, combined, onSent);
        this.queue.delete(id);
        // The peer holds it durably now: an outbox write still in progress is no longer owed.
        entry.write?.cancel();
        // Keeping the sent copy is not part of the round trip (see archive()): it starts once the caller has
        // its answer, so building and journaling the record runs while the next send is on the wire instead of
        // before this one's `delivered` (in-process A/B over tor: send → ack −0.2 to −0.34 ms median). A crash in
        // between is §5.7.1's "after delivered, before the sent copy is journaled".
        this.deps.track(afterThisTurn().then(() => this.archive(entry, sent, ack)));
        this.deps.onDelivered({ id, to: message.to, ack });
        return true;
      } catch (e) {
        const err = asMmogitError(e);
        entry.lastError = err;
        // Only our own conclusion is final; a peer's `err` frame (details.remote) never drops a message.
        if (FINAL_CODES.includes(err.code) && err.details?.remote !== true) {
          this.refuse(entry, err);
          return false;
        }
        entry.attempts += 1;
        // Jitter (50–100 % of the capped exponential delay) keeps many agents from retrying in lockstep after
        // an outage, and a peer that comes back gets its messages within about the cap.
        const wait = backoffDelay(
          {
            attempts: Number.POSITIVE_INFINITY,
            baseDelayMs: this.retry.initialDelayMs,
            maxDelayMs: this.retry.maxDelayMs,
          },
          entry.attempts,
          0.5 + Math.random() * 0.5,
        );
        entry.nextAt = this.deps.now() + wait;
        log('delivery of %s to %s failed (%s); retry in %d ms', id, message.to, err.code, wait);
        if (this.deps.running()) {
          this.deps.onQueued({
            id,
            to: message.to,
            attempts: entry.attempts,
            nextAttemptAt: entry.nextAt,
            error: err,
          });
        }
        return false;
      } finally {
        this.inflight.delete(id);
        this.schedule();
      }
    })();
    this.inflight.set(id, p);
    this.deps.track(p);
    return p;
  }

  /**
   * Stores an acknowledged message's sent copy, then drops its outbox entry (waiting for a write that was too
   * far along to cancel, so no file lingers); on failure it is queued again. A crash before the copy is
   * journaled re-sends the message if its outbox file was written (the peer de-duplicates and acks again);
   * otherwise only the sender's copy is lost, never the message.
   */
  private async archive(entry: QueueEntry, sent: AnySignedMessage, ack: SignedAck): Promise<void> {
    const { message, sig } = sent;
    try {
      await this.deps.store.append({ direction: 'out', message, sig, at: this.deps.now(), ack });
      if (entry.write) await this.deps.outbox.discard(entry.write);
      else if (!entry.fresh) await this.deps.outbox.remove(message.id);
    } catch (e) {
      this.deps.fail(asMmogitError(e));
      if (this.deps.running() && !this.queue.has(message.id)) {
        entry.attempts += 1;
        entry.nextAt = this.deps.now() + this.retry.maxDelayMs;
        this.queue.set(message.id, entry);
        this.schedule();
      }
    }
  }

  /**
   * Drops a message the peer can never take: out of the queue and the outbox (a write in progress is undone),
   * reported by the `refused` event (and to `send()`'s caller), so it is never lost without a word.
   */
  private refuse(entry: QueueEntry, err: MmogitError): void {
    const { id, to } = entry.item.message;
    entry.refused = err;
    if (this.queue.get(id) === entry) this.queue.delete(id);
    log('message %s to %s refused for good: %s', id, to, err.message);
    this.deps.track(
      (entry.write
        ? this.deps.outbox.discard(entry.write)
        : this.deps.outbox.remove(id).then(() => {})
      ).catch((e: unknown) => this.deps.fail(asMmogitError(e))),
    );
    this.deps.onRefused({ id, to, error: err });
  }

  /** Arms the retry timer for the earliest due queued message. */
  private schedule(): void {
    if (!this.deps.running()) return;
    this.stop();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, q] of this.queue) if (!this.inflight.has(id) && q.nextAt < next) next = q.nextAt;
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.runDue(), Math.max(0, next - this.deps.now()));
    this.timer.unref?.();
  }

  private runDue(): void {
    this.timer = undefined;
    if (!this.deps.running()) return;
    const now = this.deps.now();
    for (const [id, q] of this.queue) {
      if (q.nextAt <= now && !this.inflight.has(id)) {
        this.attempt(id, AbortSignal.timeout(this.retry.attemptTimeoutMs));
      }
    }
    this.schedule();
  }
}
