/**
 * Agent-to-agent messaging over `/mmogit/msg/1.0.0`: signed (domain-separated), carried in a PQ session,
 * acknowledged with a signed ack, de-duplicated by id (exactly once to the application), stored, and queued in
 * a persisted outbox with capped exponential backoff while the peer is unreachable.
 * Wire format: docs/protocol.md §5. The parts, one job each: links and their reply table (messaging-link.ts),
 * connections (messaging-connections.ts), the per-peer lock (messaging-lock.ts), one delivery attempt
 * (messaging-deliver.ts), the send path and retry queue (messaging-send.ts), the receiving side (messaging-receive.ts) and its pure checks (messaging-inbound.ts).
 * @module
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AbortOptions } from '../_async.js';
import { createLogger } from '../_log.js';
import { deadline, MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import { reasonLabel } from '../metrics/labels.js';
import { asMmogitError } from './_errors.js';
import { Connections } from './messaging-connections.js';
import { checkVersions, deliverOnLink } from './messaging-deliver.js';
import { DEFAULT_MAX_TEXT_BYTES, maxFrameBytesFor } from './messaging-envelope.js';
import {
  type AnySignedMessage,
  downgradeToV1,
  type MessageInput,
  signMessageV2,
  verifyAnyMessage,
} from './messaging-envelope-v2.js';
import { followMessages } from './messaging-follow.js';
import type { InboundLimits } from './messaging-inbound.js';
import { inboxFromIndex } from './messaging-inbox.js';
import { LinkTable } from './messaging-link.js';
import { PeerLock } from './messaging-lock.js';
import { onionHostname } from './messaging-onion.js';
import { pqMessagingSecurity } from './messaging-pq.js';
import { Receiver, seenKey } from './messaging-receive.js';
import { SendQueue } from './messaging-send.js';
import { knownMessages } from './messaging-store.js';
import type {
  InboxFilter,
  MessagingSecurity,
  MessengerDeps,
  MessengerEvents,
  PendingMessage,
  PingResult,
  ReceivedMessage,
  SendResult,
} from './messaging-types.js';
import { decodeCursor, encodeCursor, isAfter, matchesFilter, toReceived } from './messaging-view.js';
import { Outbox } from './outbox.js';
import { DEFAULT_RATE_LIMIT, KeyedRateLimiter } from './rate-limit.js';
import { countedSecurity } from './session-metrics.js';

export {
  DEFAULT_ACCEPT_TIMEOUT_MS,
  MESSAGE_PROTOCOL,
  MESSAGE_PROTOCOL_V2,
  MESSAGE_PROTOCOLS,
} from './messaging-connections.js';
export {
  DEFAULT_ATTEMPT_TIMEOUT_MS,
  DEFAULT_INITIAL_RETRY_DELAY_MS,
  DEFAULT_MAX_RETRY_DELAY_MS,
  DEFAULT_SEND_TIMEOUT_MS,
} from './messaging-send.js';
export type * from './messaging-types.js';

const log = createLogger('mmogit:agent:messaging');

/** Default bound on `ping()`. */
export const DEFAULT_PING_TIMEOUT_MS = 30_000;
/** A message dated further in the future than this is refused (clock skew). */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000;
/** A message older than this is refused (it may have waited in an outbox, so this is generous). */
export const DEFAULT_MAX_AGE_MS = 30 * 24 * 3_600_000;

/**
 * Sends and receives agent messages. Events ({@link MessengerEvents}): `message`, `delivered`, `queued`,
 * `error` (emitted only when someone listens, so an unhandled `error` never crashes the daemon).
 *
 * @example
 * const m = new Messenger({ node, key, store, security, outboxDir: join(configDir, 'outbox') });
 * m.on('message', (msg) => console.error(msg.from, msg.text)); // msg: ReceivedMessage
 * await m.start();
 * await m.send(peerOnion, 'hello'); // { id, status: 'delivered' | 'queued' }
 */
export class Messenger extends EventEmitter<MessengerEvents> {
  readonly outbox: Outbox;
  private readonly key: AgentKey;
  private readonly deps: MessengerDeps;
  private readonly now: () => number;
  private readonly limits: InboundLimits;
  private readonly links = new LinkTable();
  private readonly lock = new PeerLock();
  private readonly connections: Connections;
  private readonly receiver: Receiver;
  private readonly queue: SendQueue;
  private readonly tasks = new Set<Promise<unknown>>();
  /** Each known message's thread (received and sent), so a reply joins the thread of what it answers. */
  private readonly threads = new Map<string, string>();
  private readonly stopper = new AbortController();
  private state: 'new' | 'running' | 'stopped' = 'new';
  private readonly speaksV2: boolean;

  constructor(deps: MessengerDeps) {
    super();
    this.deps = deps;
    this.key = deps.key;
    this.now = deps.now ?? Date.now;
    this.outbox = new Outbox(deps.outboxDir);
    const maxTextBytes = deps.limits?.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
    const maxFrameBytes = maxFrameBytesFor(maxTextBytes);
    this.limits = {
      maxTextBytes,
      maxFutureSkewMs: deps.limits?.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS,
      maxAgeMs: deps.limits?.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
    };
    const versions = checkVersions(deps.versions);
    this.speaksV2 = versions.includes(2);
    const running = () => this.state === 'running';
    const counted = (s: MessagingSecurity) => (deps.metrics ? countedSecurity(s, deps.metrics) : s);
    const track = (p: Promise<unknown>) => this.track(p);
    const fail = (err: MmogitError, peer?: string) => this.fail(err, peer);
    this.receiver = new Receiver({
      key: deps.key,
      store: deps.store,
      limits: this.limits,
      maxFrameBytes,
      limiter: new KeyedRateLimiter(deps.limits?.rate ?? DEFAULT_RATE_LIMIT),
      now: this.now,
      onMessage: (m, signed) => {
        this.threads.set(m.id, m.thread);
        this.emit('message', m);
        this.emit('received', m, signed);
      },
      fail,
      onRefused: (code) => deps.metrics?.messagesRefused.inc({ direction: 'in', reason: reasonLabel(code) }),
    });
    this.connections = new Connections({
      node: deps.node,
      key: deps.key,
      security: counted(deps.security ?? pqMessagingSecurity({ maxPayload: maxFrameBytes })),
      allowClassical: deps.allowClassical ?? false,
      versions,
      links: this.links,
      stopSignal: this.stopper.signal,
      running,
      onRecord: (link, payload) => this.receiver.onRecord(link, payload),
      onPeerUp: (peer) => this.queue.expedite(peer),
      track,
      fail,
    });
    this.queue = new SendQueue({
      outbox: this.outbox,
      store: deps.store,
      deliver: (signed, signal, onSent) =>
        deliverOnLink(
          { key: this.key, links: this.links, lock: this.lock, connections: this.connections },
          signed,
          signal,
          onSent,
        ),
      ...(deps.retry ? { retry: deps.retry } : {}),
      now: this.now,
      running,
      stopSignal: this.stopper.signal,
      track,
      fail,
      onDelivered: (e) => this.emit('delivered', e),
      onQueued: (e) => this.emit('queued', e),
      onRefused: (e) => this.emit('refused', e),
    });
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
    // From the store's index where it has one: reading every stored message made a start O(messages ever stored).
    for (const k of await knownMessages(this.deps.store)) {
      if (k.direction === 'in') this.receiver.markSeen(k.from, k.id, k.at);
      this.threads.set(k.id, k.thread);
    }
    await this.connections.listen();
    const { items, corrupt } = await this.outbox.list();
    for (const name of corrupt) {
      this.fail(new MmogitError('ERR_UNTRUSTED_DATA', `outbox file ${name} is corrupt; set aside`));
    }
    // Our own outbox could hold another identity's messages if the config dir was reused: skip them.
    const mine = items.filter((item) => item.message.from === this.key.onion);
    this.queue.load(mine);
    log('started %s with %d queued', this.key.onion, mine.length);
  }

  /**
   * Sends `message` (a text, or a {@link MessageInput}: type, JSON body, thread, reply-to, metadata) to
   * `peerOnion`, signed in message format version 2 (a version 1 peer gets the same message in version 1 when
   * it can represent it, else a typed refusal). The signed message's outbox write and the first delivery attempt (bounded by
   * `timeoutMs`) run at the same time. Returns `delivered` once the peer's signed ack is verified (the peer
   * then holds the message durably, and the outbox write is cancelled or undone), or `queued` when the peer
   * could not be reached, only once the outbox file is durable (the outbox keeps retrying while the messenger
   * runs, and after a restart).
   *
   * @throws `ERR_TOO_LARGE` (text over the cap), `ERR_INVALID_ONION`, `ERR_INVALID_ARGUMENT` (own address, bad
   *   type, thread, reply-to, metadata or body), `ERR_PEER_UNSUPPORTED` (a version 1 peer and a message that
   *   needs version 2: not queued, `details.status` is `'refused'`),
   *   `ERR_ABORTED` when `signal` fires (the message then stays queued; `details.id` names it), or the outbox
   *   write's error when the peer did not ack and the message could not be queued (`details.status` is
   *   `'failed'`: it is not retried; the peer may still have received it).
   */
  async send(
    peerOnion: string,
    message: string | MessageInput,
    options: AbortOptions = {},
  ): Promise<SendResult> {
    this.requireRunning();
    const to = onionHostname(peerOnion);
    if (to === this.key.onion) throw new MmogitError('ERR_INVALID_ARGUMENT', 'cannot send a message to self');
    if (typeof message !== 'string' && (typeof message !== 'object' || message === null)) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', 'a message is a text or a MessageInput object');
    }
    const input: MessageInput = typeof message === 'string' ? { text: message } : { ...message };
    // A reply joins the thread of the message it answers (when this agent knows it).
    if (input.thread === undefined && input.replyTo !== undefined) {
      input.thread = this.threads.get(input.replyTo) ?? input.replyTo;
    }
    const v2 = signMessageV2(this.key, to, input, {
      maxBytes: this.limits.maxTextBytes,
      timestamp: this.now(),
    });
    // A messenger limited to version 1 sends what a version 1 agent would (or refuses at once).
    const signed: AnySignedMessage = this.speaksV2 ? v2 : downgradeToV1(this.key, v2.message);
    this.threads.set(v2.message.id, v2.message.thread);
    return this.queue.send(signed, options);
  }

  /**
   * Checks that `peerOnion` is reachable: establishes (or reuses) the PQ session and times a ping/pong.
   * With `fresh`, an existing session is closed first so the handshake is measured anew.
   */
  async ping(peerOnion: string, options: AbortOptions & { fresh?: boolean } = {}): Promise<PingResult> {
    this.requireRunning();
    const peer = onionHostname(peerOnion);
    const bound = deadline(options.signal, options.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS, `ping ${peer}`);
    const signal = AbortSignal.any([bound.signal, this.stopper.signal]);
    try {
      return await this.pingLocked(peer, options.fresh === true, signal);
    } finally {
      bound.clear();
    }
  }

  private pingLocked(peer: string, fresh: boolean, signal: AbortSignal): Promise<PingResult> {
    return this.lock.run(peer, signal, async () => {
      let reused = true;
      let link = this.links.get(peer);
      if (fresh && link) {
        await link.close(new MmogitError('ERR_CONNECTION_CLOSED', 'replaced by a fresh session'), false);
        link = undefined;
      }
      if (!link) {
        link = await this.connections.connect(peer, signal);
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

  /**
   * Received messages from the store in receive order (oldest first), signatures re-verified, each with its
   * `cursor`. `since` (a cursor) keeps only later ones; `from`, `type`, `thread` filter; `limit` keeps the
   * newest that many, `first` (without `limit`) the oldest that many: a page after `since`.
   *
   * @throws `ERR_BAD_CURSOR`, `ERR_INVALID_ONION` (`from`).
   */
  async inbox(filter: InboxFilter = {}): Promise<ReceivedMessage[]> {
    const from = filter.from ? parseOnionAddress(filter.from).hostname : undefined;
    const since = filter.since !== undefined ? decodeCursor(filter.since) : undefined;
    const store = this.deps.store;
    if (store.known && store.read) {
      const picked = await inboxFromIndex(
        { known: store.known.bind(store), read: store.read.bind(store) },
        {
          ...filter,
          from,
          since,
          me: this.key.onion,
        },
      );
      if (picked) return picked;
    }
    const out: ReceivedMessage[] = [];
    // A message's first stored record is its one place in the receive order (a later copy, which the receiver's
    // de-duplication should never write, would otherwise show it again after a cursor past the first).
    const seen = new Set<string>();
    for (const rec of await store.list()) {
      if (rec.direction !== 'in' || rec.message.to !== this.key.onion) continue;
      const m = rec.message;
      const k = seenKey(m.from, m.id);
      if (seen.has(k)) continue;
      seen.add(k);
      if (since && !isAfter({ at: rec.at, id: m.id }, since)) continue;
      const view = toReceived(m, verifyAnyMessage(rec), { at: rec.at, cursor: encodeCursor(rec.at, m.id) });
      if (matchesFilter(view, { ...filter, from })) out.push(view);
    }
    const list = out.sort((a, b) => (a.receivedAt ?? 0) - (b.receivedAt ?? 0) || (a.id < b.id ? -1 : 1));
    if (filter.limit !== undefined) return list.slice(-filter.limit);
    return filter.first !== undefined ? list.slice(0, filter.first) : list;
  }

  /**
   * Every received message after `since` (a cursor; default: from the first), then each new one as it is
   * stored, in receive order, filtered like {@link inbox}; never one twice, none skipped. A consumer that falls
   * far behind is served from the store. Ends when `signal` fires or the messenger stops.
   *
   * @example
   * for await (const m of messenger.messages({ since: lastCursor, signal })) handle(m); // then save m.cursor
   * @throws `ERR_BAD_CURSOR`, `ERR_INVALID_ONION` (`from`), before the first message.
   */
  messages(
    options: Omit<InboxFilter, 'limit'> & { signal?: AbortSignal } = {},
  ): AsyncGenerator<ReceivedMessage, void, undefined> {
    return followMessages(
      {
        subscribe: (fn) => {
          this.on('message', fn);
          return () => this.off('message', fn);
        },
        read: (filter) => this.inbox(filter),
        stopped: this.stopper.signal,
      },
      options,
    );
  }

  /** Lists a message that came by another protocol, checked there (a received file's offer); false if seen. */
  storeVerified(signed: AnySignedMessage): Promise<boolean> {
    return this.receiver.storeVerified(signed);
  }

  /** Messages still waiting for an ack, oldest first, with their last error. */
  pending(): PendingMessage[] {
    return this.queue.pending();
  }

  /**
   * Attempts every queued message now instead of at its backoff time: the agent's tor came back after an
   * outage, so the failures that set those backoffs say nothing about the peers. Each message is still
   * delivered once (attempts in flight are not doubled; the peer de-duplicates by id).
   */
  retryNow(): void {
    if (this.state === 'running') this.queue.expedite();
  }

  /** Attempts queued message `id` now; `ERR_NOT_FOUND` when none waits. See `mmogit outbox retry`. */
  retryQueued(id: string, options: AbortOptions = {}): ReturnType<SendQueue['retryNow']> {
    this.requireRunning();
    return this.queue.retryNow(id, options);
  }

  /** Drops queued message `id` from the queue and the outbox; `ERR_NOT_FOUND` when none waits. */
  dropQueued(id: string): Promise<{ id: string; to: string }> {
    this.requireRunning();
    return this.queue.drop(id);
  }

  /** Stops retrying, unregisters the protocol and closes every session. Queued messages stay on disk. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    this.queue.stop();
    this.stopper.abort(new MmogitError('ERR_ABORTED', 'messenger stopped'));
    if (wasRunning) await this.connections.unlisten();
    await this.links.closeAll(new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped'));
    await Promise.allSettled([...this.tasks]);
    await this.deps.store.flush?.().catch((e: unknown) => this.fail(asMmogitError(e)));
    await this.deps.store.close?.().catch((e: unknown) => this.fail(asMmogitError(e)));
  }

  private fail(err: MmogitError, peer?: string): void {
    log('error%s: %s %s', peer ? ` (${peer})` : '', err.code, err.message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
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
