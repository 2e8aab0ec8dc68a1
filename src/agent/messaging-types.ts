/**
 * The messenger's ports (what it needs from a node, a secure session and a store), its settings and the
 * shapes it hands to the application. Types only: every messaging module imports them from here, so none of
 * them imports the {@link Messenger} class.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import type { MmogitError } from '../errors.js';
import type { CanonicalValue } from '../identity/canonical.js';
import type { AgentKey } from '../identity/keys.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import type { SignedAck } from './messaging-envelope.js';
import type { AnySignedMessage, MessageInput } from './messaging-envelope-v2.js';
import type { MessageStore } from './messaging-store.js';
import type { RateLimitOptions } from './rate-limit.js';

export type { MessageInput };

/** The transport used for a link. */
export type MessagingTransportKind = 'tor' | 'direct' | 'mesh';

/** What the messenger needs from the agent's node: dial a protocol, and handle it. */
export interface MessagingNode {
  /**
   * Opens a stream for `protocol` to the agent at `onion`, as a {@link ByteChannel}. Rejects with
   * `ERR_PEER_UNSUPPORTED` when the peer answers that it does not handle `protocol` (then an older message
   * protocol is tried).
   */
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
  /**
   * Sends one record. `timeoutMs: Infinity` asks for no timer of the session's own: the caller bounds its writes
   * (a link's stall watchdog, messaging-link.ts).
   */
  send(payload: Uint8Array, options?: { timeoutMs?: number }): Promise<void>;
  /** The next record, or null when the peer closed the session. */
  receive(): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

/** Session establishment (src/pqc's `initiateSession` / `acceptSession`). */
export interface MessagingSecurity {
  initiate(
    channel: ByteChannel,
    key: AgentKey,
    options: AbortOptions & { expectedPeer: string; allowClassical?: boolean },
  ): Promise<MessagingSession>;
  accept(
    channel: ByteChannel,
    key: AgentKey,
    options: AbortOptions & { allowClassical?: boolean },
  ): Promise<MessagingSession>;
}

/** Inbound limits. */
export interface MessagingLimits {
  /** Cap on a message's text in UTF-8 bytes (default 48 KiB). */
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
  /**
   * How long after its frame is written a message waits for the ack before its outbox write starts (default
   * `DEFAULT_OUTBOX_GRACE_MS`; 0 starts it at once). A message acked sooner never touches the disk on the
   * sender's side; a failed attempt starts the write at once (docs/protocol.md §5.7.1).
   */
  outboxGraceMs?: number;
}

/**
 * A received message as the application sees it, whatever format version it came in (a version 1 message reads
 * as type `message`, its text as the body, starting its own thread).
 */
export interface ReceivedMessage {
  id: string;
  /** The sender's onion (authenticated by the PQ session and the signature). */
  from: string;
  /** The body when it is a string, else the body's canonical JSON. */
  text: string;
  /** The sender's timestamp, ms. */
  timestamp: number;
  /** The stored signature verifies against `from`'s key (re-checked on every read). */
  verified: boolean;
  /** The envelope's format version. */
  v: 1 | 2;
  /** `message`, `task-proposal`, `task-result`, `capability-query`, `status-update` or a custom type. */
  type: string;
  /** Any JSON value (a string for plain messages). */
  body: CanonicalValue;
  /** The id of the thread's first message (the message's own id when it starts one). */
  thread: string;
  replyTo?: string;
  meta?: Record<string, string>;
  /** When this agent stored it (ms; strictly increasing per agent). */
  receivedAt?: number;
  /** Position in this agent's receive order: pass it as `since` to get only later messages. */
  cursor?: string;
}

/** Filters of `Messenger.inbox` and `Messenger.messages`. */
export interface InboxFilter {
  /** Only from this onion. */
  from?: string | undefined;
  type?: string | undefined;
  thread?: string | undefined;
  /** Only messages after this cursor ({@link ReceivedMessage.cursor}). */
  since?: string | undefined;
  /** The newest `limit` matching messages. */
  limit?: number | undefined;
  /**
   * The oldest `first` matching messages (after `since`): a page of a backlog, read forward by passing the
   * last one's cursor as the next `since`. Not with `limit`.
   */
  first?: number | undefined;
}

/** Payload of the `refused` event: a queued message that the peer can never take (it is dropped). */
export interface RefusedEvent {
  id: string;
  to: string;
  error: MmogitError;
}

/** Result of `Messenger.send`. */
export interface SendResult {
  id: string;
  status: 'delivered' | 'queued';
  /** The message's thread (its own id when it starts one): pass it as `thread` to continue it. */
  thread: string;
}

/** Result of `Messenger.ping` (what `mmogit tor connect` shows). */
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

/** A message still waiting for its ack, as `Messenger.pending()` lists it. */
export interface PendingMessage {
  id: string;
  to: string;
  attempts: number;
  /** When the next attempt is due (ms; `Infinity` while the first attempt runs). */
  nextAttemptAt: number;
  /** When `send()` queued it (ms). */
  queuedAt: number;
  type: string;
  /** The start of its text (at most 80 characters). */
  preview: string;
  /** Why the last attempt failed. */
  lastError?: { code: string; message: string };
}

/**
 * The messenger's events, for a typed `on()`:
 * - `message`: a new verified message, emitted once per (sender, id) ever;
 * - `delivered`: a sent message was acknowledged (its outbox entry is gone);
 * - `queued`: a delivery attempt failed; the message stays queued for a retry;
 * - `refused`: the peer can never take a queued message (it speaks only message format version 1 and the
 *   message needs version 2): it is dropped from the outbox, never lost silently;
 * - `error`: a peer sent garbage, a store write failed, … (emitted only when someone listens, so an
 *   unhandled `error` never crashes the daemon).
 */
export interface MessengerEvents {
  message: [ReceivedMessage];
  delivered: [DeliveredEvent];
  queued: [QueuedEvent];
  refused: [RefusedEvent];
  /** The same message as `message`, with the signed envelope it came in (for hooks and relays). */
  received: [ReceivedMessage, AnySignedMessage];
  error: [MmogitError];
}

/** Dependencies and settings of a `Messenger`. */
export interface MessengerDeps {
  node: MessagingNode;
  key: AgentKey;
  store: MessageStore;
  /** Session layer; default: the hybrid PQ channel of src/pqc (`pqMessagingSecurity`). */
  security?: MessagingSecurity;
  outboxDir: string;
  limits?: MessagingLimits;
  retry?: RetryPolicy;
  /** Accept peers that cannot do ML-KEM (classical X25519 only). Default false. */
  allowClassical?: boolean;
  /** The agent's metrics: handshakes and open sessions are counted into it (src/metrics). */
  metrics?: AgentMetrics;
  /**
   * Message format versions to speak (default `[2, 1]`): 2 serves `/mmogit/msg/2.0.0` and dials it first, 1
   * serves `/mmogit/msg/1.0.0` and falls back to it for peers without 2. `[1]` behaves as a version 1 agent.
   */
  versions?: readonly (1 | 2)[];
  /**
   * The clock, ms since the epoch (default `Date.now`): message and ack timestamps, the inbound time window,
   * stored times and retry times. Tests inject one instead of sleeping for distinct timestamps.
   */
  now?: () => number;
}
