/**
 * Direct messaging streams: the PQ session on a tor stream of its own to the peer's onion, without libp2p's
 * noise and yamux underneath (docs/protocol.md §5.11).
 *
 * Why: on a warm link every message, ack and ping crossed noise (an AEAD pass and a length prefix), yamux (a
 * header, window accounting) and libp2p's stream machinery on both sides, although the PQ session above them
 * already authenticates the peer's key and encrypts every record, and a messaging link is one stream per peer
 * that needs no multiplexer. Measured on the private network, in one process beside the libp2p path: a ping
 * took 2.0–2.2× a bare echo through the same tors over libp2p, 1.2–1.4× on a direct stream, with less than
 * half the CPU per round trip (docs/protocol.md §5.11).
 *
 * How: the onion publishes one more virtual port ({@link DIRECT_MESSAGING_PORT}) to a local listener. A dialler
 * opens a tor stream to it (the node's SOCKS, the same isolation as its libp2p dials, so the same rendezvous
 * circuit), sends a preface naming the message protocol, waits for the one-byte answer, and then runs exactly
 * what it would run on a libp2p stream of that protocol. A peer without the port (an older mmogit) refuses the
 * connect, and the dialler uses libp2p for that peer from then on (re-tried after a while). Only peers whose
 * transport policy is `tor-only` (the default) go direct: every other policy keeps libp2p's routing.
 * @module
 */
import net from 'node:net';
import type { AbortOptions } from '../_async.js';
import { createLogger } from '../_log.js';
import { deadline, hasCode, MmogitError } from '../errors.js';
import type { OnionPortTarget } from '../tor/onion-service.js';
import { closeOnionTarget, listenOnionTarget, type OnionTargetListen } from '../tor/onion-target.js';
import { SocksError } from '../tor/socks.js';
import { type ByteChannel, channelFromDuplex } from '../transport/byte-channel.js';
import {
  DIRECT_ACCEPTED,
  DIRECT_BUSY,
  DIRECT_MESSAGING_PORT,
  DIRECT_UNSUPPORTED,
  encodePreface,
  readPreface,
} from './messaging-direct-wire.js';
import type { MessagingNode } from './messaging-types.js';

const log = createLogger('mmogit:messaging:direct');

/** The listener's Unix socket in the config dir (mode 0600: only our own tor opens it). */
export const DIRECT_MESSAGING_SOCKET = 'messaging.sock';
/** Direct streams (pending and established) an agent holds at once; past it the oldest pending one goes. */
export const DEFAULT_MAX_DIRECT_STREAMS = 512;
/** Time an inbound stream has to send its preface. */
export const DEFAULT_PREFACE_TIMEOUT_MS = 5_000;
/** Bound on a dialler's wait for the answer byte (the stream is open: one round trip through tor). */
export const DIRECT_ANSWER_TIMEOUT_MS = 30_000;
/** How long a peer that refused the port (no direct messaging) is dialled through libp2p only. */
export const NO_DIRECT_RETRY_MS = 10 * 60_000;
/** How long a peer whose direct stream failed otherwise is dialled through libp2p only. */
export const DIRECT_FAILED_RETRY_MS = 60_000;
/** Peers remembered as "libp2p only"; past it the oldest is forgotten (it is tried direct again). */
const MAX_REMEMBERED = 4096;
/** RFC 1928 §6 reply 5: tor's answer when the onion has no such virtual port. */
const SOCKS_CONNECTION_REFUSED = 5;

export interface DirectMessagingOptions {
  /** The libp2p route: the fallback, and what serves every protocol not in {@link protocols}. */
  base: MessagingNode;
  /**
   * Opens a tor stream to `port` of `onion` (the node's `openOnionStream`). Throws ERR_TRANSPORT_POLICY for a
   * peer whose policy is not `tor-only`: that peer is dialled through {@link base}.
   */
  openStream(onion: string, port: number, options: AbortOptions): Promise<net.Socket>;
  /** The protocols carried on direct streams (the message protocols). */
  protocols: readonly string[];
  /** Where the listener binds: a Unix socket (agents: in the config dir), or 127.0.0.1 on a free port. */
  listen: OnionTargetListen;
  maxStreams?: number;
  prefaceTimeoutMs?: number;
}

/** A running direct-messaging listener and the node that dials through it. */
export interface DirectMessaging {
  /** {@link DirectMessagingOptions.base} with direct streams for the message protocols. */
  readonly node: MessagingNode;
  /** The onion port to publish: {@link DIRECT_MESSAGING_PORT} → the listener. */
  readonly port: OnionPortTarget;
  /** Direct streams opened so far: dialled (answered "accepted") and accepted here; and dials that fell back. */
  stats(): { dialled: number; accepted: number; fellBack: number };
  close(): Promise<void>;
}

type Handler = Parameters<MessagingNode['handle']>[1];

/** Starts the listener; the returned node dials direct first for {@link DirectMessagingOptions.protocols}. */
export async function startDirectMessaging(opts: DirectMessagingOptions): Promise<DirectMessaging> {
  const direct = new Set(opts.protocols);
  const handlers = new Map<string, Handler>();
  const maxStreams = opts.maxStreams ?? DEFAULT_MAX_DIRECT_STREAMS;
  const prefaceTimeoutMs = opts.prefaceTimeoutMs ?? DEFAULT_PREFACE_TIMEOUT_MS;
  /** Every socket open now; `pending` are those that have not had their answer yet (oldest first). */
  const sockets = new Set<net.Socket>();
  const pending = new Set<net.Socket>();
  /** onion → when to try a direct stream again. */
  const libp2pOnlyUntil = new Map<string, number>();
  let closed = false;
  const counts = { dialled: 0, accepted: 0, fellBack: 0 };

  const serve = async (socket: net.Socket): Promise<void> => {
    const channel = channelFromDuplex(socket);
    const timer = setTimeout(() => socket.destroy(), prefaceTimeoutMs);
    try {
      const protocol = await readPreface(channel);
      const handler = handlers.get(protocol);
      if (!handler) {
        await channel.write(Uint8Array.of(DIRECT_UNSUPPORTED));
        socket.end();
        return;
      }
      pending.delete(socket);
      clearTimeout(timer);
      await channel.write(Uint8Array.of(DIRECT_ACCEPTED));
      counts.accepted++;
      // From here the handler owns the stream, with the deadlines it keeps on a libp2p one (the messenger's
      // inbound handshake bound, then its link's write watchdog).
      handler(channel, { transport: 'tor' });
    } catch (e) {
      log('inbound direct stream refused: %s', e instanceof Error ? e.message : String(e));
      socket.destroy();
    } finally {
      clearTimeout(timer);
    }
  };

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    if (closed) {
      socket.destroy();
      return;
    }
    if (sockets.size >= maxStreams) {
      // Evict the oldest stream still without its answer (a slow or silent one), as the libp2p listener does
      // with its pending upgrades; with none pending every slot is an authenticated session: refuse.
      const oldest = pending.values().next().value;
      if (oldest) oldest.destroy();
      else {
        socket.end(Uint8Array.of(DIRECT_BUSY));
        return;
      }
    }
    sockets.add(socket);
    pending.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      pending.delete(socket);
    });
    void serve(socket);
  });
  server.on('error', (e) => log('direct messaging listener: %s', e.message));
  const listen = opts.listen;
  const target = await listenOnionTarget(server, listen);

  const remember = (onion: string, ms: number) => {
    libp2pOnlyUntil.delete(onion);
    libp2pOnlyUntil.set(onion, Date.now() + ms);
    if (libp2pOnlyUntil.size > MAX_REMEMBERED) {
      const first = libp2pOnlyUntil.keys().next().value;
      if (first !== undefined) libp2pOnlyUntil.delete(first);
    }
  };
  const goesDirect = (onion: string, protocol: string): boolean => {
    if (!direct.has(protocol)) return false;
    const until = libp2pOnlyUntil.get(onion);
    if (until === undefined) return true;
    if (until > Date.now()) return false;
    libp2pOnlyUntil.delete(onion);
    return true;
  };

  /** A direct stream to `onion` for `protocol`, or null when this peer is to be dialled through libp2p. */
  const dialDirect = async (
    onion: string,
    protocol: string,
    signal: AbortSignal | undefined,
  ): Promise<ByteChannel | null> => {
    let socket: net.Socket;
    try {
      socket = await opts.openStream(onion, DIRECT_MESSAGING_PORT, signal ? { signal } : {});
    } catch (e) {
      if (signal?.aborted) throw e;
      if (hasCode(e, 'ERR_TRANSPORT_POLICY')) return null; // not a tor-only peer: libp2p routes it
      const refused = e instanceof SocksError && e.reply === SOCKS_CONNECTION_REFUSED;
      remember(onion, refused ? NO_DIRECT_RETRY_MS : DIRECT_FAILED_RETRY_MS);
      log('%s: no direct stream (%s); libp2p', onion, e instanceof Error ? e.message : String(e));
      return null;
    }
    const channel = channelFromDuplex(socket);
    const bound = deadline(signal, DIRECT_ANSWER_TIMEOUT_MS, `direct stream to ${onion}`);
    let answer: number | undefined;
    try {
      await channel.write(encodePreface(protocol), { signal: bound.signal });
      answer = (await channel.readExactly(1, { signal: bound.signal }))[0];
    } catch (e) {
      channel.abort(e instanceof Error ? e : new Error(String(e)));
      if (signal?.aborted) throw e;
      remember(onion, DIRECT_FAILED_RETRY_MS);
      return null;
    } finally {
      bound.clear();
    }
    if (answer === DIRECT_ACCEPTED) {
      counts.dialled++;
      return channel;
    }
    channel.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'direct stream refused'));
    if (answer === DIRECT_UNSUPPORTED) {
      throw new MmogitError('ERR_PEER_UNSUPPORTED', `${onion} does not serve ${protocol}`, {
        details: { peer: onion, protocol },
      });
    }
    if (answer !== DIRECT_BUSY) remember(onion, DIRECT_FAILED_RETRY_MS);
    return null;
  };

  const node: MessagingNode = {
    async dial(onion, protocol, options = {}) {
      if (goesDirect(onion, protocol)) {
        const channel = await dialDirect(onion, protocol, options.signal);
        if (channel) return { channel, transport: 'tor' };
        counts.fellBack++;
      }
      return opts.base.dial(onion, protocol, options);
    },
    async handle(protocol, handler) {
      if (direct.has(protocol)) handlers.set(protocol, handler);
      await opts.base.handle(protocol, handler);
    },
    async unhandle(protocol) {
      handlers.delete(protocol);
      await opts.base.unhandle?.(protocol);
    },
  };

  return {
    node,
    port: { virtualPort: DIRECT_MESSAGING_PORT, target },
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      for (const s of sockets) s.destroy();
      await closeOnionTarget(server, listen);
    },
  };
}
