/**
 * The libp2p node discovery runs on: one with kad-dht as `services.dht`, and the agent key inside its PeerId.
 * @module
 */
import type { Libp2p, PeerId } from '@libp2p/interface';
import type { KadDHT } from '@libp2p/kad-dht';

/** A libp2p node with our DHT at `services.dht`. */
export type DiscoveryNode = Libp2p<{ dht: KadDHT }>;

/** Whether `node` runs the kad-dht service discovery needs (as `services.dht`). */
export function isDiscoveryNode(node: Libp2p): node is DiscoveryNode {
  const dht: unknown = node.services.dht;
  return (
    typeof dht === 'object' &&
    dht !== null &&
    typeof (dht as Partial<KadDHT>).getClosestPeers === 'function' &&
    typeof (dht as Partial<KadDHT>).put === 'function'
  );
}

/** Public key of an Ed25519 PeerId (agents' PeerIds are their Ed25519 keys), else undefined. */
export function peerIdPublicKey(peerId: PeerId): Uint8Array | undefined {
  return peerId.type === 'Ed25519' ? peerId.publicKey.raw : undefined;
}
