/**
 * The post-quantum mesh (docs/mesh.md): multi-hop circuits through mmogit relays with a hybrid
 * X25519 + ML-KEM-768 layer per hop, a SOCKS5 entry and self-healing stream sets. Wire format: docs/protocol.md §8.
 * @module
 */
export {
  DEFAULT_BEACON_INTERVAL_MS,
  DEFAULT_HOPS,
  MAX_HOPS,
  MESH_PROTOCOL,
  MESH_PROTOCOL_VERSION,
  MIN_HOPS,
} from './_wire.js';
export { Circuit, type CircuitEvents, type RelayInfo } from './circuit.js';
export { ClientSet } from './conflux.js';
export {
  MESH_RELAY_EXTENSION_URI,
  MESH_RELAY_SERVICE,
  parseRelaySpec,
  type RelayDescriptor,
  relayExtension,
  relayFromAdvert,
} from './descriptor.js';
export { MeshError, type MeshFailure } from './errors.js';
export {
  DEFAULT_EXIT_POLICY,
  describePolicy,
  type ExitPolicy,
  exitPolicyFrom,
  parseExitRule,
} from './exit-policy.js';
export type { Link, OnionChannelDialer, RelayAddress } from './link.js';
export { LinkPool } from './link-pool.js';
export { type CircuitInfo, Mesh, type MeshEvents, type MeshOptions, nowEpochMs } from './mesh.js';
export { MeshMetrics } from './metrics.js';
export { Relay, type RelayEvent, type RelayHooks, type RelayOptions } from './relay.js';
export { type RelayRecord, Reputation, scoreOf } from './reputation.js';
export { DEFAULT_SOCKS_PORT, type SocksServer, startSocksServer } from './socks.js';
export { MeshStream } from './streams.js';
