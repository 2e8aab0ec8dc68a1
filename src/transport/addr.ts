/**
 * Onion ↔ PeerId ↔ multiaddr: one Ed25519 key is an agent's libp2p PeerId (identity multihash of the
 * protobuf-wrapped public key) and its v3 onion address (rend-spec-v3 §6), so either names the other.
 * @module
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { MmogitError } from '../errors.js';
import { onionFromPublicKey, parseOnionAddress } from '../identity/onion.js';

/** Multiaddr protocol codes we look at (multicodec table). */
export const CODE_ONION3 = 445;
export const CODE_P2P = 421;
export const CODE_IP4 = 4;
export const CODE_IP6 = 41;
export const CODE_TCP = 6;

/** The onion service's virtual port an agent publishes when none is given. */
export const DEFAULT_ONION_VIRTUAL_PORT = 4001;

/**
 * `/onion3/<serviceId>:<port>[/p2p/<peerId>]`.
 *
 * @example onionMultiaddr('pg6m…cryd.onion', 4001).toString() // '/onion3/pg6m…cryd:4001'
 */
export function onionMultiaddr(onion: string, port: number, peerId?: string): Multiaddr {
  const { serviceId } = parseOnionAddress(onion);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `onion port must be 1..65535, got ${port}`);
  }
  return multiaddr(`/onion3/${serviceId}:${port}${peerId ? `/p2p/${peerId}` : ''}`);
}

/** The PeerId of the agent behind a v3 onion address (its Ed25519 key, identity multihash). */
export function peerIdFromOnion(onion: string): PeerId {
  const { publicKey } = parseOnionAddress(onion);
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey));
}

/** The raw 32-byte Ed25519 public key inside a PeerId; throws ERR_INVALID_ARGUMENT for other key types. */
export function ed25519KeyOfPeerId(peerId: PeerId): Uint8Array {
  if (peerId.type !== 'Ed25519' || peerId.publicKey === undefined) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `not an Ed25519 PeerId: ${peerId.toString()}`, {
      details: { type: peerId.type },
    });
  }
  return peerId.publicKey.raw;
}

/** The `<56 chars>.onion` address of an Ed25519 PeerId. */
export function onionFromPeerId(peerId: PeerId): string {
  return onionFromPublicKey(ed25519KeyOfPeerId(peerId));
}

/** Parts of an `/onion3` multiaddr, or undefined when `ma` is not one. */
export function onionOfMultiaddr(ma: Multiaddr): { serviceId: string; port: number } | undefined {
  const c = ma.getComponents()[0];
  if (c?.code !== CODE_ONION3 || c.value === undefined) return undefined;
  const [serviceId, port] = c.value.split(':');
  return { serviceId: serviceId as string, port: Number(port) };
}

/** The `/p2p/<id>` of a multiaddr, if any. */
export function peerIdOfMultiaddr(ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast((c) => c.code === CODE_P2P)?.value;
}

/** Whether a multiaddr is an onion address (reached only through tor). */
export function isOnionMultiaddr(ma: Multiaddr): boolean {
  return onionOfMultiaddr(ma) !== undefined;
}

/** What a dial target string names. */
export type ParsedTarget =
  | { kind: 'onion'; multiaddr: Multiaddr; peerId: PeerId }
  | { kind: 'multiaddr'; multiaddr: Multiaddr; peerId: PeerId | undefined }
  | { kind: 'peer'; peerId: PeerId };

/**
 * Parses a dial target: `<onion>[.onion][:port]`, a multiaddr string (`/…`), or a PeerId string. An onion
 * target gets `/p2p/<peerIdFromOnion>` so the noise handshake proves the remote holds the onion's key.
 */
export function parseTarget(target: string, defaultPort = DEFAULT_ONION_VIRTUAL_PORT): ParsedTarget {
  const t = target.trim();
  if (t.startsWith('/')) {
    let ma: Multiaddr;
    try {
      ma = multiaddr(t);
    } catch (cause) {
      throw new MmogitError('ERR_INVALID_MULTIADDR', `invalid multiaddr "${t}"`, { cause });
    }
    const p2p = peerIdOfMultiaddr(ma);
    const onion = onionOfMultiaddr(ma);
    if (onion) {
      const peerId = peerIdFromOnion(onion.serviceId);
      if (p2p !== undefined && p2p !== peerId.toString()) {
        throw new MmogitError('ERR_INVALID_MULTIADDR', `"${t}": /p2p does not match the onion's key`);
      }
      return { kind: 'onion', multiaddr: p2p ? ma : ma.encapsulate(`/p2p/${peerId}`), peerId };
    }
    return { kind: 'multiaddr', multiaddr: ma, peerId: p2p ? peerIdFromString(p2p) : undefined };
  }
  const m = /^([a-z2-7]{56})(?:\.onion)?(?::(\d{1,5}))?$/i.exec(t);
  if (m) {
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    const peerId = peerIdFromOnion(m[1] as string);
    return { kind: 'onion', multiaddr: onionMultiaddr(m[1] as string, port, peerId.toString()), peerId };
  }
  try {
    return { kind: 'peer', peerId: peerIdFromString(t) };
  } catch (cause) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `dial target "${t}" is neither an onion, a multiaddr nor a PeerId`,
      { cause },
    );
  }
}
