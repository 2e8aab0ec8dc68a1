/**
 * How advertisements live in a standard libp2p Kademlia DHT on a private protocol id: record keys, provider
 * keys, the validator and selector kad-dht runs, and the `kadDHT(...)` options.
 *
 * Everything here is plain kad-dht: a stock libp2p node configured with {@link DHT_PROTOCOL} and
 * {@link advertValidator}/{@link advertSelector} under {@link DHT_NAMESPACE} reads our records.
 * @module
 */
import '../_polyfill.js';
import { createHash } from 'node:crypto';
import {
  type KadDHTInit,
  passthroughMapper,
  removePrivateAddressesMapper,
  type SelectFn,
  type ValidateFn,
} from '@libp2p/kad-dht';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import {
  compareAdvertisements,
  invalidAdvert,
  type VerifiedAdvertisement,
  verifyAdvertisement,
} from './advertisement.js';

/** Our private kad-dht protocol id: mmogit agents never mix with the public IPFS DHT. */
export const DHT_PROTOCOL = '/mmogit/kad/1.0.0';
/** kad-dht routes validation by the first key segment (`/<namespace>/…`). */
export const DHT_NAMESPACE = 'mmogit';
/** Second key segment of advertisement records: `/mmogit/ad/<hex pubkey>`. */
export const ADVERT_RECORD_KIND = 'ad';
/** Label hashed into provider keys: CIDv1(raw, sha256("<label>:<service>")). */
export const SERVICE_KEY_LABEL = 'mmogit-service/v1';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const RAW_CODEC = 0x55;
const SHA2_256 = 0x12;

/** The DHT key of an agent's advertisement: UTF-8 of `/mmogit/ad/<64 hex>`. */
export function advertRecordKey(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw invalidAdvert('pubkey', 'public key must be 32 bytes');
  return encoder.encode(`/${DHT_NAMESPACE}/${ADVERT_RECORD_KIND}/${Buffer.from(publicKey).toString('hex')}`);
}

/** The provider key for a service: CIDv1(raw, sha256("mmogit-service/v1:<service>")). */
export function serviceProviderKey(service: string): CID {
  const digest = createHash('sha256').update(`${SERVICE_KEY_LABEL}:${service}`, 'utf8').digest();
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, new Uint8Array(digest)));
}

/**
 * Verifies a record and that it sits under its own key (a valid advert of A stored under B's key is refused,
 * so nobody can squat another agent's key). Throws `ERR_INVALID_RECORD`.
 */
export function verifyAdvertRecord(
  key: Uint8Array,
  value: Uint8Array,
  options: { now?: number } = {},
): VerifiedAdvertisement {
  const v = verifyAdvertisement(value, options);
  const expected = advertRecordKey(v.publicKey);
  if (!Buffer.from(expected).equals(Buffer.from(key))) {
    throw invalidAdvert('key-mismatch', `record stored under ${decoder.decode(key).slice(0, 90)}`);
  }
  return v;
}

/** kad-dht validator for the `mmogit` namespace: run on every PUT received and every record fetched. */
export const advertValidator: ValidateFn = (key, value) => {
  const parts = decoder.decode(key).split('/');
  if (parts[2] !== ADVERT_RECORD_KIND) throw invalidAdvert('key-mismatch', 'unknown mmogit record kind');
  verifyAdvertRecord(key, value);
};

/** kad-dht selector: the newest valid record wins (later issuedAt; ties by bytes). */
export const advertSelector: SelectFn = (key, records) => {
  let best = -1;
  let bestAd: VerifiedAdvertisement | undefined;
  records.forEach((r, i) => {
    let v: VerifiedAdvertisement;
    try {
      v = verifyAdvertRecord(key, r);
    } catch {
      return;
    }
    if (bestAd === undefined || compareAdvertisements(v, bestAd) > 0) {
      best = i;
      bestAd = v;
    }
  });
  return best === -1 ? 0 : best;
};

/** Options of {@link dhtServiceOptions}. */
export interface DhtServiceOptions {
  /**
   * Keep private (127.0.0.1, LAN) addresses in peer records. Only for loopback tests and benchmarks: over tor
   * peers must learn only onion addresses (kad-dht's default mapper drops private ones, keeps onion3).
   */
  allowPrivateAddresses?: boolean;
  /** Extra kad-dht options (timeouts for tor, k, …); ours win for protocol, validators and selectors. */
  init?: KadDHTInit;
}

/**
 * What `createAgentNode`'s `services.dht` gets: `kadDHT(dhtServiceOptions())`.
 *
 * @example
 * const node = await createLibp2p({ …, services: { dht: kadDHT(dhtServiceOptions()) } })
 */
export function dhtServiceOptions(options: DhtServiceOptions = {}): KadDHTInit & {
  protocol: string;
  clientMode: false;
  validators: Record<string, ValidateFn>;
  selectors: Record<string, SelectFn>;
} {
  return {
    // Over tor a dial is a rendezvous of several seconds: keep kad-dht's dial timeouts generous.
    networkDialTimeout: { minTimeout: 10_000, maxTimeout: 60_000 },
    // A lone bootstrap agent must still be able to store its own record.
    allowQueryWithZeroPeers: true,
    peerInfoMapper: options.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper,
    ...options.init,
    protocol: DHT_PROTOCOL,
    // Agents are reachable through their onion service, so every agent serves the DHT.
    clientMode: false,
    validators: { ...options.init?.validators, [DHT_NAMESPACE]: advertValidator },
    selectors: { ...options.init?.selectors, [DHT_NAMESPACE]: advertSelector },
  };
}
