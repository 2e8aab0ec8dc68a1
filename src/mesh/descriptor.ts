/**
 * Relay descriptors (docs/protocol.md §8.8): what a relay advertises inside its signed advertisement (an A2A
 * `AgentExtension` in the card), and the `--relay ONION[@HOST:PORT]` form a user names relays with.
 * @module
 */
import { MmogitError } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import { MESH_PROTOCOL_VERSION } from './_wire.js';
import type { RelayInfo } from './circuit.js';
import { type ExitPolicy, policyFromDescriptor, splitHostPort } from './exit-policy.js';

/** The service name relays advertise. */
export const MESH_RELAY_SERVICE = 'mesh_relay';
/** URI of the card extension that carries the descriptor. */
export const MESH_RELAY_EXTENSION_URI = 'urn:mmogit:mesh-relay:1';
const MAX_LIST = 8;

/** The descriptor's JSON (extension `params`). */
export interface RelayDescriptor {
  version: number;
  /** `tcp:HOST:PORT` addresses (may be empty: onion only). */
  addrs: string[];
  /** Exit policy entries (`onion:PORT`, `tcp:HOST:PORT[-PORT]`). */
  exits: string[];
  /** Onions of the same operator. */
  family: string[];
}

/** An A2A AgentExtension entry carrying a descriptor. */
export interface RelayExtension {
  uri: string;
  description: string;
  required: boolean;
  params: RelayDescriptor;
}

export function relayExtension(d: RelayDescriptor): RelayExtension {
  return {
    uri: MESH_RELAY_EXTENSION_URI,
    description: 'mmogit mesh relay (docs/protocol.md §8.8)',
    required: false,
    params: d,
  };
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_LIST || !v.every((s) => typeof s === 'string' && s.length <= 300)) {
    throw new MmogitError(
      'ERR_INVALID_RECORD',
      `relay descriptor: ${what} must be at most ${MAX_LIST} short strings`,
    );
  }
  return v as string[];
}

function tcpOf(addr: string): { host: string; port: number } | undefined {
  if (!addr.startsWith('tcp:')) return undefined;
  const { host, port } = splitHostPort(addr.slice(4), 'relay address');
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) return undefined;
  return { host, port: n };
}

/**
 * The relay a verified advertisement describes, or null when it carries no (valid) descriptor. `onion` and
 * `publicKey` come from the advert, which the caller verified.
 */
export function relayFromAdvert(advert: { onion: string; pubkey: string; card: unknown }): RelayInfo | null {
  const card = advert.card as { capabilities?: { extensions?: unknown } };
  const exts = card.capabilities?.extensions;
  if (!Array.isArray(exts)) return null;
  const ext = exts.find((e) => (e as { uri?: unknown })?.uri === MESH_RELAY_EXTENSION_URI) as
    | { params?: unknown }
    | undefined;
  if (!ext || typeof ext.params !== 'object' || ext.params === null) return null;
  const p = ext.params as Record<string, unknown>;
  try {
    if (p.version !== MESH_PROTOCOL_VERSION) return null;
    const addrs = strings(p.addrs, 'addrs');
    const tcp = addrs.map(tcpOf).find((a) => a !== undefined);
    const family = strings(p.family ?? [], 'family').filter((o) => {
      try {
        parseOnionAddress(o);
        return true;
      } catch {
        return false;
      }
    });
    const exitPolicy: ExitPolicy = policyFromDescriptor(strings(p.exits, 'exits'));
    return {
      publicKey: new Uint8Array(Buffer.from(advert.pubkey, 'hex')),
      onion: advert.onion,
      ...(tcp ? { tcp } : {}),
      exitPolicy,
      family,
    };
  } catch {
    return null;
  }
}

/** Parses `--relay ONION[@HOST:PORT]`: the onion names the key to authenticate, `@HOST:PORT` a direct route. */
export function parseRelaySpec(spec: string): RelayInfo {
  const at = spec.indexOf('@');
  const onionPart = at < 0 ? spec : spec.slice(0, at);
  const { hostname, publicKey } = parseOnionAddress(onionPart);
  if (at < 0) return { publicKey, onion: hostname };
  const { host, port } = splitHostPort(spec.slice(at + 1), '--relay');
  const n = Number(port);
  if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `--relay: "${port}" is not a port`);
  }
  return { publicKey, onion: hostname, tcp: { host, port: n } };
}
