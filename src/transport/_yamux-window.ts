/**
 * Yamux window updates the way the reference implementation sends them, for our nodes only.
 *
 * `@chainsafe/libp2p-yamux` 8 sends a WINDOW_UPDATE frame after *every* data frame it receives. Over an onion
 * service that small extra frame costs a whole delayed-ACK period: tor does not set TCP_NODELAY on the
 * connection it forwards to us, so a reply written right after the update waits ~40 ms for our ACK (measured in
 * bench/messaging.ts: a request/ack round trip went from ~2 ms to ~90 ms). hashicorp/yamux — the protocol's
 * reference (session.go, `sendWindowUpdate`) — only sends an update once at least half of the receive window
 * has been consumed, unless flags must go out; {@link halfWindowYamux} makes the streams of the muxers it
 * creates do the same.
 *
 * Scope: the rule is set on each stream of a muxer made by {@link halfWindowYamux}, never on the shared
 * `YamuxStream` prototype, so another libp2p in the same process (a host application's) keeps the package's
 * own behaviour. It reaches two internals, the muxer's `_newStream` and the stream's window fields; both are
 * checked against the one version they were read from ({@link YAMUX_PATCHED_VERSION}), and a node refuses to
 * start (`ERR_INTERNAL`) when the package or those internals changed, rather than silently losing the rule.
 * test/transport/yamux-window.test.ts counts the WINDOW_UPDATE frames on the wire.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { yamux } from '@chainsafe/libp2p-yamux';
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import type { MultiaddrConnection, StreamMuxerFactory } from '@libp2p/interface';
import { MmogitError } from '../errors.js';

/** The `@chainsafe/libp2p-yamux` version whose internals this module was written against. */
export const YAMUX_PATCHED_VERSION = '8.0.1';

type YamuxInit = Parameters<typeof yamux>[0];

/** The window fields of a stream, as `stream.js` of {@link YAMUX_PATCHED_VERSION} keeps them. */
interface WindowFields {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate: () => void;
}

function hasWindowFields(stream: unknown): stream is WindowFields {
  if (typeof stream !== 'object' || stream === null) return false;
  const s = stream as Record<string, unknown>;
  return (
    typeof s.state === 'number' &&
    typeof s.recvWindow === 'number' &&
    typeof s.recvWindowCapacity === 'number' &&
    typeof s.sendWindowUpdate === 'function'
  );
}

interface StreamFactoryHost {
  _newStream: (...args: unknown[]) => unknown;
}

function hasNewStream(muxer: unknown): muxer is StreamFactoryHost {
  return (
    typeof muxer === 'object' &&
    muxer !== null &&
    typeof (muxer as Record<string, unknown>)._newStream === 'function'
  );
}

function changed(what: string): MmogitError {
  return new MmogitError(
    'ERR_INTERNAL',
    `@chainsafe/libp2p-yamux changed (${what}): src/transport/_yamux-window.ts was written for ${YAMUX_PATCHED_VERSION}; re-check its window rule against the new version`,
    { details: { expected: YAMUX_PATCHED_VERSION } },
  );
}

/** The installed package's version, read from its package.json (the package does not export that file). */
export function installedYamuxVersion(): string | undefined {
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths('@chainsafe/libp2p-yamux') ?? []) {
    const file = join(dir, '@chainsafe', 'libp2p-yamux', 'package.json');
    if (!existsSync(file)) continue;
    const version: unknown = JSON.parse(readFileSync(file, 'utf8')).version;
    return typeof version === 'string' ? version : undefined;
  }
  return undefined;
}

let checked = false;

/** Throws `ERR_INTERNAL` unless the installed yamux is the version and shape this module was written for. */
export function checkYamux(): void {
  if (checked) return;
  const version = installedYamuxVersion();
  if (version !== YAMUX_PATCHED_VERSION) throw changed(`installed version ${version ?? 'unknown'}`);
  if (typeof YamuxStream.prototype.sendWindowUpdate !== 'function') throw changed('no sendWindowUpdate');
  if (StreamState.Established !== 3 || StreamState.Paused !== 5) throw changed('StreamState values');
  checked = true;
}

/**
 * Sets the half-window rule on one stream (an own property: the prototype stays as it is). Established streams
 * carry no flags on a window update, so only the amount matters there; SYN/ACK/FIN and the paused and initial
 * states go through the package's own method unchanged.
 */
export function useHalfWindow(stream: unknown): void {
  if (!hasWindowFields(stream)) throw changed('stream window fields');
  const original = stream.sendWindowUpdate;
  stream.sendWindowUpdate = function (this: WindowFields): void {
    const consumed = this.recvWindow - this.recvWindowCapacity;
    if (this.state === StreamState.Established && consumed < this.recvWindow / 2) return;
    original.call(this);
  };
}

/**
 * `yamux(init)` whose muxers give every stream they create the half-window rule. Use it in place of `yamux()`
 * in `streamMuxers`; throws `ERR_INTERNAL` at once if the package changed (see the module comment).
 *
 * @example
 * createLibp2p({ streamMuxers: [halfWindowYamux({ streamOptions: { maxStreamWindowSize } })], … })
 */
export function halfWindowYamux(init?: YamuxInit): () => StreamMuxerFactory {
  checkYamux();
  const make = yamux(init);
  return () => {
    const factory = make();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn: MultiaddrConnection) => {
      const muxer = create(maConn);
      const host: unknown = muxer; // `_newStream` is private in the package's types
      if (!hasNewStream(host)) throw changed('no muxer._newStream');
      const newStream = host._newStream;
      host._newStream = function (this: unknown, ...args: unknown[]): unknown {
        const stream = newStream.apply(this, args);
        useHalfWindow(stream);
        return stream;
      };
      return muxer;
    };
    return factory;
  };
}
