/**
 * Signed agent advertisements: the record an agent publishes in the DHT so others can find and reach it.
 *
 * Wire form: the UTF-8 canonical JSON (RFC 8785 subset, see identity/canonical.ts) of an {@link Advertisement}.
 * The signature is Ed25519 over the canonical JSON of the same object without `signature`, under the
 * domain-separation context `advertisement/v1` (docs/protocol.md §6 (Signature)). The encoding is
 * unique: a record whose bytes are not the canonical re-encoding of what they parse to is rejected, so two
 * nodes never hold two byte-different forms of one advertisement.
 *
 * This module has no libp2p import: the CLI can verify adverts without loading libp2p.
 * @module
 */
import { MmogitError } from '../errors.js';
import {
  type AgentKey,
  type CanonicalValue,
  canonicalBytes,
  parseOnionAddress,
  SIGNING_CONTEXTS,
  toCanonical,
  verifySignature,
} from '../identity/index.js';
import { type AgentCard, type AgentExtension, buildAgentCard, MMOGIT_PROTOCOL_BINDING } from './a2a-card.js';

/** Format version of the envelope. A verifier rejects any other. */
export const ADVERT_VERSION = 1;
/**
 * Largest encoded advertisement accepted anywhere (DHT validator, discover, CLI). A typical one is ~1 KB;
 * 4 KiB leaves room for names, descriptions and a few services, and bounds what a node must store per key.
 */
export const ADVERT_MAX_BYTES = 4096;
/** Default lifetime; agents re-publish well before it ends (see Discovery's republish interval). */
export const ADVERT_DEFAULT_TTL_MS = 30 * 60_000;
/** Longest lifetime a verifier accepts: a leaked or replayed record cannot outlive this. */
export const ADVERT_MAX_TTL_MS = 24 * 60 * 60_000;
/** Clock skew tolerated for `issuedAt` in the future. */
export const ADVERT_MAX_SKEW_MS = 2 * 60_000;
/** Post-quantum channel suites mmogit offers (src/pqc). */
export const PQ_SUITES = ['hybrid-x25519-mlkem768'] as const;
/** Version of the PQ handshake the suites refer to. */
export const PQ_HANDSHAKE_VERSION = 1;

/** At most this many services in one advertisement. */
export const MAX_SERVICES = 16;
const MAX_ADDRS = 4;
/** A service name: 1–64 lower-case letters, digits and `_ . -`, starting with a letter or digit. */
export const SERVICE_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const ONION3_ADDR_RE = /^\/onion3\/([a-z2-7]{56}):(\d{1,5})$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const HEX128_RE = /^[0-9a-f]{128}$/;
const TOP_LEVEL_KEYS = new Set([
  'version',
  'pubkey',
  'onion',
  'addrs',
  'services',
  'pq',
  'issuedAt',
  'expiresAt',
  'card',
  'signature',
]);

/** What the PQ channel needs to know before dialing: the suites offered (keys are ephemeral per session). */
export interface PqInfo {
  suites: string[];
  version: number;
}

/**
 * An advertisement as it travels (JSON). All members are covered by `signature` (lower-case hex, 64 bytes).
 * Times are integer milliseconds since the Unix epoch.
 */
export interface Advertisement {
  version: number;
  /** Ed25519 public key, lower-case hex (32 bytes). Also the libp2p PeerId's key. */
  pubkey: string;
  /** `<56 chars>.onion`, derived from `pubkey` (rend-spec-v3 §6): checked by every verifier. */
  onion: string;
  /** Dialable multiaddrs, only `/onion3/<this onion's 56 chars>:<port>` (may be empty). */
  addrs: string[];
  /** Service names, sorted, unique; equal to `card.skills[].id`. */
  services: string[];
  pq: PqInfo;
  issuedAt: number;
  expiresAt: number;
  card: AgentCard;
  signature: string;
}

/** An advertisement and its canonical encoding. */
export interface SignedAdvertisement {
  readonly advert: Advertisement;
  /** The canonical wire bytes (what the DHT stores). */
  readonly bytes: Uint8Array;
}

/** An advertisement that passed {@link verifyAdvertisement}. */
export interface VerifiedAdvertisement extends SignedAdvertisement {
  readonly publicKey: Uint8Array;
}

/** Why a record was refused; in `error.details.reason`. */
export type AdvertRejection =
  | 'too-large'
  | 'malformed'
  | 'non-canonical'
  | 'version'
  | 'pubkey'
  | 'onion-binding'
  | 'signature'
  | 'expired'
  | 'future'
  | 'lifetime'
  | 'services'
  | 'addrs'
  | 'card'
  | 'key-mismatch';

/** The error every verifier throws: code `ERR_INVALID_RECORD`, `details.reason` an {@link AdvertRejection}. */
export function invalidAdvert(reason: AdvertRejection, message: string, cause?: unknown): MmogitError {
  return new MmogitError('ERR_INVALID_RECORD', `invalid advertisement: ${message}`, {
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

function unsignedBody(advert: Advertisement): CanonicalValue {
  const { signature: _signature, ...body } = advert;
  return toCanonical(body);
}

/** The bytes the signature covers (before domain separation): canonical JSON without `signature`. */
export function advertisementSigningBytes(
  advert: Omit<Advertisement, 'signature'> | Advertisement,
): Uint8Array {
  return canonicalBytes(unsignedBody(advert as Advertisement));
}

/** Canonical wire bytes of an advertisement. */
export function encodeAdvertisement(advert: Advertisement | SignedAdvertisement): Uint8Array {
  const a = 'advert' in advert && 'bytes' in advert ? advert.advert : (advert as Advertisement);
  return canonicalBytes(toCanonical(a));
}

/**
 * Parses wire bytes into an advertisement, checking size, JSON, shape and canonical form, but not the
 * signature or times: use {@link verifyAdvertisement} for anything that reaches a user.
 *
 * @throws MmogitError `ERR_INVALID_RECORD` (`too-large`, `malformed`, `non-canonical`, …).
 */
export function decodeAdvertisement(bytes: Uint8Array): Advertisement {
  if (!(bytes instanceof Uint8Array)) throw invalidAdvert('malformed', 'not bytes');
  if (bytes.length > ADVERT_MAX_BYTES) {
    throw invalidAdvert('too-large', `${bytes.length} bytes exceeds ${ADVERT_MAX_BYTES}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw invalidAdvert('malformed', 'not UTF-8 JSON', e);
  }
  const advert = checkShape(parsed);
  let canonical: Uint8Array;
  try {
    canonical = canonicalBytes(parsed as CanonicalValue);
  } catch (e) {
    throw invalidAdvert('malformed', 'not canonical-encodable', e);
  }
  if (!bytesEqual(canonical, bytes)) throw invalidAdvert('non-canonical', 'bytes are not canonical JSON');
  return advert;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function checkShape(v: unknown): Advertisement {
  if (!isObject(v)) throw invalidAdvert('malformed', 'not a JSON object');
  for (const k of Object.keys(v)) {
    if (!TOP_LEVEL_KEYS.has(k)) throw invalidAdvert('malformed', `unknown member "${k.slice(0, 32)}"`);
  }
  if (typeof v.version !== 'number') throw invalidAdvert('malformed', 'version missing');
  if (v.version !== ADVERT_VERSION) throw invalidAdvert('version', `unsupported version ${v.version}`);
  if (typeof v.pubkey !== 'string' || !HEX64_RE.test(v.pubkey)) {
    throw invalidAdvert('pubkey', 'pubkey must be 64 lower-case hex characters');
  }
  if (typeof v.onion !== 'string') throw invalidAdvert('malformed', 'onion missing');
  if (!isStringArray(v.addrs) || v.addrs.length > MAX_ADDRS) {
    throw invalidAdvert('addrs', `addrs must be at most ${MAX_ADDRS} strings`);
  }
  if (!isStringArray(v.services)) throw invalidAdvert('services', 'services must be strings');
  if (!isObject(v.pq) || !isStringArray(v.pq.suites) || !Number.isSafeInteger(v.pq.version)) {
    throw invalidAdvert('malformed', 'pq must be { suites: string[], version: integer }');
  }
  if (!Number.isSafeInteger(v.issuedAt) || !Number.isSafeInteger(v.expiresAt)) {
    throw invalidAdvert('malformed', 'issuedAt/expiresAt must be integer milliseconds');
  }
  if (!isObject(v.card)) throw invalidAdvert('card', 'card must be an object');
  if (typeof v.signature !== 'string' || !HEX128_RE.test(v.signature)) {
    throw invalidAdvert('signature', 'signature must be 128 lower-case hex characters');
  }
  return v as unknown as Advertisement;
}

function checkServices(services: string[]): void {
  if (services.length === 0 || services.length > MAX_SERVICES) {
    throw invalidAdvert('services', `between 1 and ${MAX_SERVICES} services required`);
  }
  for (let i = 0; i < services.length; i++) {
    const s = services[i] as string;
    if (!SERVICE_RE.test(s)) throw invalidAdvert('services', `bad service name "${s.slice(0, 64)}"`);
    if (i > 0 && (services[i - 1] as string) >= s) {
      throw invalidAdvert('services', 'services must be sorted and unique');
    }
  }
}

/** The card is checked field by field as untrusted data: every field is `unknown` here. */
function checkCard(card: { readonly [K in keyof AgentCard]?: unknown }, advert: Advertisement): void {
  if (typeof card.name !== 'string' || typeof card.description !== 'string') {
    throw invalidAdvert('card', 'card.name and card.description must be strings');
  }
  const skills = card.skills;
  if (!Array.isArray(skills) || !skills.every((s) => isObject(s) && typeof s.id === 'string')) {
    throw invalidAdvert('card', 'card.skills must be objects with an id');
  }
  const ids = skills.map((s) => (s as { id: string }).id).sort();
  if (ids.join('\n') !== advert.services.join('\n')) {
    throw invalidAdvert('card', 'card.skills ids differ from services');
  }
  const ifaces = card.supportedInterfaces;
  if (!Array.isArray(ifaces) || ifaces.length === 0 || !isObject(ifaces[0])) {
    throw invalidAdvert('card', 'card.supportedInterfaces must list our interface first');
  }
  const first = ifaces[0];
  if (first.protocolBinding !== MMOGIT_PROTOCOL_BINDING || typeof first.url !== 'string') {
    throw invalidAdvert('card', `first interface must use ${MMOGIT_PROTOCOL_BINDING}`);
  }
  let host: string;
  try {
    host = new URL(first.url).hostname;
  } catch (e) {
    throw invalidAdvert('card', 'interface url is not a URL', e);
  }
  // The card's onion URL must be the signed onion: a card cannot point peers at another service.
  if (host !== advert.onion) throw invalidAdvert('onion-binding', 'card interface url names another onion');
}

/**
 * Checks everything a receiver must check before using an advertisement (docs/protocol.md §6
 * §Verification): size, canonical encoding, version, pubkey, onion ↔ pubkey binding (rend-spec-v3 §6),
 * signature, services, card, lifetime, not expired, not issued in the future beyond `maxSkewMs`.
 *
 * @example
 * const v = verifyAdvertisement(bytesFromDht); v.advert.onion; // trusted
 * @throws MmogitError `ERR_INVALID_RECORD` with `details.reason` (an {@link AdvertRejection}).
 */
export function verifyAdvertisement(
  input: Uint8Array | Advertisement | SignedAdvertisement,
  options: { now?: number; maxSkewMs?: number } = {},
): VerifiedAdvertisement {
  let bytes: Uint8Array;
  if (input instanceof Uint8Array) {
    bytes = input;
  } else {
    const advert = 'advert' in input && 'bytes' in input ? input.advert : (input as Advertisement);
    try {
      bytes = canonicalBytes(toCanonical(advert));
    } catch (e) {
      throw invalidAdvert('malformed', 'not canonical-encodable', e);
    }
  }
  const advert = decodeAdvertisement(bytes);
  const publicKey = new Uint8Array(Buffer.from(advert.pubkey, 'hex'));
  try {
    const parsed = parseOnionAddress(advert.onion, publicKey);
    if (parsed.hostname !== advert.onion) throw new Error('onion must be lower case with .onion suffix');
  } catch (e) {
    throw invalidAdvert('onion-binding', 'onion does not belong to pubkey', e);
  }
  if (
    !verifySignature(
      SIGNING_CONTEXTS.advertisement,
      advertisementSigningBytes(advert),
      new Uint8Array(Buffer.from(advert.signature, 'hex')),
      publicKey,
    )
  ) {
    throw invalidAdvert('signature', 'bad signature');
  }
  checkServices(advert.services);
  const serviceId = advert.onion.slice(0, -'.onion'.length);
  for (const addr of advert.addrs) {
    const m = ONION3_ADDR_RE.exec(addr);
    const port = m ? Number(m[2]) : 0;
    if (!m || m[1] !== serviceId || port < 1 || port > 65535) {
      throw invalidAdvert('addrs', `addr "${addr.slice(0, 100)}" is not /onion3/<own onion>:<port>`);
    }
  }
  checkCard(advert.card, advert);
  const now = options.now ?? Date.now();
  const skew = options.maxSkewMs ?? ADVERT_MAX_SKEW_MS;
  if (advert.expiresAt <= advert.issuedAt || advert.expiresAt - advert.issuedAt > ADVERT_MAX_TTL_MS) {
    throw invalidAdvert('lifetime', `lifetime must be in (0, ${ADVERT_MAX_TTL_MS}] ms`);
  }
  if (advert.issuedAt > now + skew) throw invalidAdvert('future', 'issued in the future');
  if (advert.expiresAt <= now) throw invalidAdvert('expired', 'expired');
  return { advert, bytes, publicKey };
}

/** Input of {@link createAdvertisement}. */
export interface CreateAdvertisementInput {
  services: string[];
  ttlMs?: number;
  name?: string;
  description?: string;
  /** Virtual port of the onion service; adds `/onion3/<onion>:<port>` to `addrs` and the card URL. */
  port?: number;
  /** Time of issue (ms); defaults to now. */
  now?: number;
  pq?: PqInfo;
  agentVersion?: string;
  /** A2A extensions for the card (covered by the signature), e.g. a mesh relay descriptor. */
  extensions?: readonly AgentExtension[];
}

/**
 * Builds and signs an advertisement for `key`.
 *
 * @example
 * const { advert, bytes } = createAdvertisement(key, { services: ['memory_sync'], name: 'alice' });
 * @throws MmogitError `ERR_INVALID_ARGUMENT` for bad services/ttl, `ERR_TOO_LARGE` above {@link ADVERT_MAX_BYTES}.
 */
export function createAdvertisement(key: AgentKey, input: CreateAdvertisementInput): SignedAdvertisement {
  const services = [...new Set(input.services)].sort();
  try {
    checkServices(services);
  } catch (e) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', (e as Error).message, { cause: e });
  }
  const ttlMs = input.ttlMs ?? ADVERT_DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > ADVERT_MAX_TTL_MS) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `ttlMs must be an integer in (0, ${ADVERT_MAX_TTL_MS}]`);
  }
  if (input.port !== undefined && !(Number.isInteger(input.port) && input.port > 0 && input.port < 65536)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'port must be 1–65535');
  }
  const issuedAt = Math.floor(input.now ?? Date.now());
  const body: Omit<Advertisement, 'signature'> = {
    version: ADVERT_VERSION,
    pubkey: key.publicKeyHex,
    onion: key.onion,
    addrs: input.port === undefined ? [] : [`/onion3/${key.serviceId}:${input.port}`],
    services,
    pq: input.pq ?? { suites: [...PQ_SUITES], version: PQ_HANDSHAKE_VERSION },
    issuedAt,
    expiresAt: issuedAt + ttlMs,
    card: buildAgentCard({
      onion: key.onion,
      port: input.port,
      services,
      name: input.name,
      description: input.description,
      agentVersion: input.agentVersion,
      ...(input.extensions ? { extensions: input.extensions } : {}),
    }),
  };
  const signature = key.sign(SIGNING_CONTEXTS.advertisement, advertisementSigningBytes(body));
  const advert: Advertisement = { ...body, signature: Buffer.from(signature).toString('hex') };
  const bytes = encodeAdvertisement(advert);
  if (bytes.length > ADVERT_MAX_BYTES) {
    throw new MmogitError(
      'ERR_TOO_LARGE',
      `advertisement is ${bytes.length} bytes, max ${ADVERT_MAX_BYTES}`,
      {
        details: { size: bytes.length, max: ADVERT_MAX_BYTES },
      },
    );
  }
  return { advert, bytes };
}

/** The newer of two verified adverts of one key: later `issuedAt`, ties broken by bytes (deterministic). */
export function compareAdvertisements(a: SignedAdvertisement, b: SignedAdvertisement): number {
  if (a.advert.issuedAt !== b.advert.issuedAt) return a.advert.issuedAt - b.advert.issuedAt;
  return Buffer.compare(Buffer.from(a.bytes), Buffer.from(b.bytes));
}
