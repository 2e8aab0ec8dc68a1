/**
 * `/mmogit/advert/1.0.0`: fetch an agent's current signed advertisement straight from the agent.
 *
 * The dialer opens a stream and writes nothing; the provider writes one frame — an unsigned-varint length
 * (the multiformats varint libp2p uses everywhere) followed by the canonical advertisement bytes — and closes
 * its end. A provider with nothing to serve closes without writing. The dialer reads at most
 * {@link ADVERT_MAX_BYTES} (a larger announced length is refused before any body byte is buffered), verifies
 * the bytes exactly as a DHT copy (see advertisement.ts) and also checks that the advert's key is the key of
 * the peer it talked to (the noise handshake authenticated that PeerId): a provider can only serve its own
 * advertisement. See docs/protocol.md §6, Direct fetch.
 * @module
 */
import '../_polyfill.js';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import {
  ADVERT_MAX_BYTES,
  invalidAdvert,
  type VerifiedAdvertisement,
  verifyAdvertisement,
} from './advertisement.js';

/** Protocol id of the direct advertisement fetch. */
export const ADVERT_PROTOCOL = '/mmogit/advert/1.0.0';
/**
 * Default budget of one direct fetch (dial + read). A cold onion connect is a rendezvous (seconds); discover
 * does not wait for it alone, it starts the DHT copy after {@link ADVERT_HEDGE_MS}.
 */
export const ADVERT_FETCH_TIMEOUT_MS = 15_000;
/** How long a provider spends writing one answer before giving up on a slow reader. */
export const ADVERT_SERVE_TIMEOUT_MS = 10_000;
/** Inbound fetch streams a provider accepts at once per connection (an answer is one small write). */
export const ADVERT_MAX_INBOUND_STREAMS = 8;

/** The part of a libp2p node the fetch uses. */
export type AdvertDialer = Pick<Libp2p, 'dialProtocol' | 'peerId'>;

/**
 * Answers one fetch stream with `bytes` (or, when undefined, closes without writing).
 *
 * @example await node.handle(ADVERT_PROTOCOL, (s) => serveAdvert(s, discovery.current?.bytes))
 */
export async function serveAdvert(
  stream: Stream,
  bytes: Uint8Array | undefined,
  options: AbortOptions = {},
): Promise<void> {
  const signal = withTimeout(options.signal, options.timeoutMs ?? ADVERT_SERVE_TIMEOUT_MS, 'serve advert');
  try {
    if (bytes !== undefined) await lpStream(stream).write(bytes, { signal });
    await stream.close({ signal });
  } catch (e) {
    stream.abort(e instanceof Error ? e : new Error(String(e)));
  }
}

/**
 * Dials `peer` (through `multiaddrs` when given, else what the peer store knows), reads its advertisement and
 * returns it verified, or null when the peer has none to serve.
 *
 * @example const v = await fetchAdvert(node, provider.id, provider.multiaddrs, { timeoutMs: 5_000 })
 * @throws MmogitError `ERR_INVALID_RECORD` (`key-mismatch` for another key's advert, or any verification
 *   failure, `too-large` above {@link ADVERT_MAX_BYTES}), `ERR_TIMEOUT`, `ERR_ABORTED`, and
 *   `ERR_PEER_UNREACHABLE` for every libp2p failure (dial, refused protocol, reset stream; the libp2p error is
 *   the `cause`, its name in `details.name`).
 */
export async function fetchAdvert(
  node: AdvertDialer,
  peer: PeerId,
  multiaddrs: readonly Multiaddr[] = [],
  options: AbortOptions & { now?: number } = {},
): Promise<VerifiedAdvertisement | null> {
  const peerKey = peer.type === 'Ed25519' ? peer.publicKey.raw : undefined;
  if (peerKey === undefined) throw invalidAdvert('pubkey', 'peer is not an Ed25519 PeerId');
  const signal = withTimeout(options.signal, options.timeoutMs ?? ADVERT_FETCH_TIMEOUT_MS, 'fetch advert');
  const id = peer.toString();
  // The addresses the provider record carried: with /p2p/<id> libp2p reuses an open connection to the peer.
  const target =
    multiaddrs.length > 0
      ? multiaddrs.map((m) =>
          m.getComponents().some((c) => c.name === 'p2p') ? m : m.encapsulate(`/p2p/${id}`),
        )
      : peer;
  let stream: Stream | undefined;
  let bytes: Uint8Array;
  try {
    stream = await node.dialProtocol(target, ADVERT_PROTOCOL, { signal });
    const lp = lpStream(stream, { maxDataLength: ADVERT_MAX_BYTES });
    try {
      bytes = (await lp.read({ signal })).subarray();
    } catch (e) {
      if ((e as Error).name === 'UnexpectedEOFError' && !signal.aborted) {
        // closed before a length: the peer has no advert (a truncated body also lands here: nothing usable)
        stream.close().catch(() => {});
        return null;
      }
      if (
        (e as Error).name === 'InvalidDataLengthError' ||
        (e as Error).name === 'InvalidDataLengthLengthError'
      ) {
        throw invalidAdvert('too-large', `peer announced more than ${ADVERT_MAX_BYTES} bytes`, e);
      }
      throw e;
    }
    stream.close().catch(() => {});
  } catch (e) {
    stream?.abort(e instanceof Error ? e : new Error(String(e)));
    if (signal.aborted) throw abortReason(signal, 'fetch advert');
    if (e instanceof MmogitError) throw e;
    // libp2p's own errors (refused protocol, reset stream, bad varint…) become one typed code.
    throw new MmogitError('ERR_PEER_UNREACHABLE', `fetch advert from ${id}: ${(e as Error)?.message ?? e}`, {
      cause: e,
      details: { peer: id, ...(e instanceof Error ? { name: e.name } : {}) },
    });
  }
  const v = verifyAdvertisement(bytes, { now: options.now });
  if (!Buffer.from(v.publicKey).equals(Buffer.from(peerKey))) {
    throw invalidAdvert('key-mismatch', `peer ${id} served the advert of ${v.advert.onion}`);
  }
  return v;
}
