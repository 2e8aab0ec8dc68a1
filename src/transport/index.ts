/**
 * Transport: one libp2p node per agent over Tor (`/onion3` via SOCKS5), the per-peer transport policy
 * (HybridTransport) and byte channels over sockets and libp2p streams.
 * @module
 */

export type { AbortOptions } from '../_async.js';
export {
  CODE_ONION3,
  DEFAULT_ONION_VIRTUAL_PORT,
  ed25519KeyOfPeerId,
  isOnionMultiaddr,
  onionFromPeerId,
  onionMultiaddr,
  onionOfMultiaddr,
  type ParsedTarget,
  parseTarget,
  peerIdFromOnion,
  peerIdOfMultiaddr,
} from './addr.js';
export { type ByteChannel, channelFromDuplex } from './byte-channel.js';
export {
  DEFAULT_TRANSPORT_POLICY,
  type DowngradeEvent,
  HybridTransport,
  type HybridTransportInit,
  type RouteKind,
  routeOf,
  TRANSPORT_POLICIES,
  type TransportPolicy,
} from './hybrid.js';
export {
  type AgentNode,
  type AgentNodeEvents,
  type AgentNodeOptions,
  type AgentStreamHandler,
  type ConnectionInfo,
  createAgentNode,
  DEFAULT_DIAL_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  DEFAULT_TOR_DIAL_ATTEMPTS,
  DEFAULT_TOR_PHASE_TIMEOUT_MS,
  DEFAULT_YAMUX_INITIAL_WINDOW,
  DEFAULT_YAMUX_MAX_WINDOW,
  type RemoteInfo,
} from './node.js';
export { InboundRegistry, type Onion3TransportInit, onion3Transport, type SocksEndpoint } from './onion3.js';
export { channelFromStream, STREAM_CHANNEL_HIGH_WATER } from './stream-channel.js';
