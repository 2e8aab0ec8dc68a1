/**
 * Connection handling of the messenger: dialling a peer and running the PQ handshake (connect), answering
 * inbound streams (accept), registering the resulting link (adopt) and reading its records until it ends
 * (read loop). What a record means is the receiver's business (messaging-receive.ts).
 * @module
 */
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import { asMmogitError } from './_errors.js';
import { Link, type LinkTable } from './messaging-link.js';
import type {
  MessagingNode,
  MessagingSecurity,
  MessagingSession,
  MessagingTransportKind,
} from './messaging-types.js';

/** Records of one link handled at once (each holds at most one frame, ≤ the frame cap, and one store write). */
export const MAX_RECORDS_IN_FLIGHT = 128;
/** The libp2p protocol id of agent messaging, message format version 1 (docs/protocol.md §5.1). */
export const MESSAGE_PROTOCOL = '/mmogit/msg/1.0.0';
/** The protocol id of message format version 2 (docs/protocol.md §5.10); same frames, v2 envelopes allowed. */
export const MESSAGE_PROTOCOL_V2 = '/mmogit/msg/2.0.0';
/** The protocol id of each message format version. */
export const MESSAGE_PROTOCOLS: Readonly<Record<1 | 2, string>> = {
  1: MESSAGE_PROTOCOL,
  2: MESSAGE_PROTOCOL_V2,
};
/** Default bound on an inbound PQ handshake. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 20_000;

/** What {@link Connections} needs from the messenger. */
export interface ConnectionsDeps {
  node: MessagingNode;
  key: AgentKey;
  security: MessagingSecurity;
  allowClassical: boolean;
  /** The message format versions this agent speaks, preferred first. */
  versions: readonly (1 | 2)[];
  links: LinkTable;
  /** Fires when the messenger stops (inbound handshakes give up then). */
  stopSignal: AbortSignal;
  running(): boolean;
  /** Handles one record of `link`; the read loop stops once the link is closed. */
  onRecord(link: Link, payload: Uint8Array): Promise<void>;
  /** A peer completed an inbound handshake (it is evidently up). */
  onPeerUp(peer: string): void;
  /** Keeps a background task for `stop()` to wait on. */
  track(task: Promise<unknown>): void;
  fail(err: MmogitError, peer?: string): void;
}

/** Dials, accepts and reads links. */
export class Connections {
  constructor(private readonly deps: ConnectionsDeps) {}

  /** Serves every protocol of {@link ConnectionsDeps.versions} on the node. */
  async listen(): Promise<void> {
    for (const version of this.deps.versions) {
      await this.deps.node.handle(MESSAGE_PROTOCOLS[version], (channel, info) => {
        this.deps.track(this.accept(channel, info.transport, info.remoteOnion, version));
      });
    }
  }

  /** Stops serving the protocols. */
  async unlisten(): Promise<void> {
    for (const version of this.deps.versions) {
      await Promise.resolve(this.deps.node.unhandle?.(MESSAGE_PROTOCOLS[version])).catch(() => {});
    }
  }

  /**
   * Opens a stream for the newest version both sides speak: the preferred protocol first, the next one when
   * the peer answers that it does not handle it (`ERR_PEER_UNSUPPORTED` from the node).
   */
  private async dial(
    peer: string,
    signal: AbortSignal,
  ): Promise<{ channel: ByteChannel; transport: MessagingTransportKind; version: 1 | 2 }> {
    const versions = this.deps.versions;
    for (const [i, version] of versions.entries()) {
      try {
        const opened = await this.deps.node.dial(peer, MESSAGE_PROTOCOLS[version], { signal });
        return { ...opened, version };
      } catch (e) {
        const err = asMmogitError(e);
        if (err.code !== 'ERR_PEER_UNSUPPORTED') throw err;
        if (i === versions.length - 1) {
          // Serving none of our versions is usually a peer still starting (its node answers before its
          // messenger registers): worth a retry, unlike a version 1 peer refusing a version 2 message.
          throw new MmogitError('ERR_PEER_UNREACHABLE', `${peer} does not serve messaging (yet)`, {
            cause: err,
            details: { peer },
          });
        }
      }
    }
    throw new MmogitError('ERR_INTERNAL', 'no message format version to dial');
  }

  /** Dials `peer` and runs the PQ handshake; the new link becomes the peer's current one. */
  async connect(peer: string, signal: AbortSignal): Promise<Link> {
    const t0 = performance.now();
    const { channel, transport, version } = await this.dial(peer, signal);
    let session: MessagingSession;
    try {
      session = await this.deps.security.initiate(channel, this.deps.key, {
        expectedPeer: peer,
        signal,
        allowClassical: this.deps.allowClassical,
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
    const ms = session.handshakeMs ?? performance.now() - t0;
    const link = new Link(peer, session, channel, transport, ms, version);
    this.adopt(link);
    return link;
  }

  /** Answers an inbound stream: PQ handshake as responder, then the link is adopted. Never throws. */
  async accept(
    channel: ByteChannel,
    transport: MessagingTransportKind,
    remoteOnion: string | undefined,
    version: 1 | 2,
  ): Promise<void> {
    const t0 = performance.now();
    let session: MessagingSession;
    try {
      session = await this.deps.security.accept(channel, this.deps.key, {
        signal: AbortSignal.any([
          withTimeout(undefined, DEFAULT_ACCEPT_TIMEOUT_MS, 'inbound handshake'),
          this.deps.stopSignal,
        ]),
        timeoutMs: DEFAULT_ACCEPT_TIMEOUT_MS,
        allowClassical: this.deps.allowClassical,
      });
    } catch (e) {
      const err = asMmogitError(e);
      channel.abort(err);
      this.deps.fail(err);
      return;
    }
    if (!this.deps.running()) {
      channel.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped'));
      return;
    }
    const peer = session.peer.onion;
    if (remoteOnion !== undefined && remoteOnion !== peer) {
      // The transport (libp2p noise) and the PQ handshake authenticated different keys: a relay or a bug.
      const err = new MmogitError(
        'ERR_HANDSHAKE',
        `transport peer ${remoteOnion} differs from session peer ${peer}`,
        { details: { peer } },
      );
      channel.abort(err);
      this.deps.fail(err, peer);
      return;
    }
    const ms = session.handshakeMs ?? performance.now() - t0;
    this.adopt(new Link(peer, session, channel, transport, ms, version));
    this.deps.onPeerUp(peer);
  }

  /** Registers `link` and starts its read loop (or closes it when the messenger has stopped). */
  private adopt(link: Link): void {
    if (!this.deps.running()) {
      void link.close(new MmogitError('ERR_CONNECTION_CLOSED', 'messenger stopped'), true);
      return;
    }
    this.deps.links.add(link);
    this.deps.track(this.readLoop(link));
  }

  /**
   * Reads `link`'s records and hands each to `onRecord` without waiting for the one before to finish (at most
   * {@link MAX_RECORDS_IN_FLIGHT} at once): a pipelining sender's messages then share the journal's group
   * commit instead of paying one synchronous write each in turn. Order is kept where it matters: `onRecord`
   * decodes, checks, dates and issues a message's store write synchronously, before its first await.
   */
  private async readLoop(link: Link): Promise<void> {
    let reason = new MmogitError('ERR_CONNECTION_CLOSED', `${link.peer} closed the session`);
    const inflight = new Set<Promise<void>>();
    try {
      for (;;) {
        const payload = await link.session.receive();
        if (payload === null) break;
        const handled: Promise<void> = this.deps
          .onRecord(link, payload)
          .finally(() => inflight.delete(handled));
        inflight.add(handled);
        if (inflight.size >= MAX_RECORDS_IN_FLIGHT) await Promise.race(inflight);
        if (link.closed) return;
      }
      // An orderly end: the acks of the last records go out before the link closes.
      await Promise.allSettled(inflight);
    } catch (e) {
      reason = asMmogitError(e);
      if (!link.closed && this.deps.running()) {
        // The PQ layer refused a record (forged, truncated, oversized): the peer or the path is bad.
        if (reason.category === 'security') this.deps.fail(reason, link.peer);
        await link.close(reason, true);
      }
    } finally {
      await link.close(reason, false);
      this.deps.links.remove(link);
    }
  }
}
