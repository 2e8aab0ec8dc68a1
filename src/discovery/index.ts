/**
 * Discovery: signed agent advertisements (A2A-shaped cards in a signed envelope) in a private Kademlia DHT.
 * @module
 */
export {
  A2A_COMPAT_PROTOCOL_VERSION,
  type AgentCard,
  type AgentInterface,
  type AgentSkill,
  buildAgentCard,
  MMOGIT_BINDING_VERSION,
  MMOGIT_PROTOCOL_BINDING,
  mmogitInterfaceUrl,
  SERVICE_DESCRIPTIONS,
} from './a2a-card.js';
export {
  ADVERT_FETCH_TIMEOUT_MS,
  ADVERT_MAX_INBOUND_STREAMS,
  ADVERT_PROTOCOL,
  ADVERT_SERVE_TIMEOUT_MS,
  type AdvertDialer,
  fetchAdvert,
  serveAdvert,
} from './advert-protocol.js';
export {
  ADVERT_DEFAULT_TTL_MS,
  ADVERT_MAX_BYTES,
  ADVERT_MAX_SKEW_MS,
  ADVERT_MAX_TTL_MS,
  ADVERT_VERSION,
  type Advertisement,
  type AdvertRejection,
  advertisementSigningBytes,
  type CreateAdvertisementInput,
  compareAdvertisements,
  createAdvertisement,
  decodeAdvertisement,
  encodeAdvertisement,
  PQ_HANDSHAKE_VERSION,
  PQ_SUITES,
  type PqInfo,
  type SignedAdvertisement,
  type VerifiedAdvertisement,
  verifyAdvertisement,
} from './advertisement.js';
export {
  BOOTSTRAP_DIAL_TIMEOUT_MS,
  BOOTSTRAP_RETRY,
  BOOTSTRAP_TIMEOUT_MS,
  type BootstrapOptions,
  type BootstrapProgress,
  bootstrapAddrsFromNetwork,
  bootstrapDialer,
} from './bootstrap.js';
export {
  ADVERT_RECORD_KIND,
  advertRecordKey,
  advertSelector,
  advertValidator,
  DHT_NAMESPACE,
  DHT_PROTOCOL,
  type DhtServiceOptions,
  dhtServiceOptions,
  SERVICE_KEY_LABEL,
  serviceProviderKey,
  verifyAdvertRecord,
} from './dht.js';
export {
  ADVERT_HEDGE_MS,
  ADVERTISE_TIMEOUT_MS,
  type AdvertiseOptions,
  DISCOVER_SETTLE_MS,
  DISCOVER_TIMEOUT_MS,
  type DiscoverOptions,
  Discovery,
  type DiscoveryNode,
  type DiscoveryOptions,
  isDiscoveryNode,
  LOOKUP_TIMEOUT_MS,
  type LookupOptions,
  type PublishReport,
  peerIdPublicKey,
  REPUBLISH_INTERVAL_MS,
} from './discovery.js';
export {
  SELF_LOOKUP_TIMEOUT_MS,
  type SelfLookupOptions,
  type SelfLookupResult,
  selfLookup,
} from './self-lookup.js';
