/**
 * The A2A v1.0 Agent Card an mmogit agent serves on its onion (`http://<onion>/.well-known/agent-card.json`),
 * derived from what its signed advertisement says (name, services as skills) and signed by the agent's own
 * Ed25519 key with A2A's card signature (A2A v1.0 §8.4: JWS, RFC 7515, over the JCS canonical card, RFC 8785).
 *
 * The JWS key id (`kid`) is the onion address, and the onion *is* the Ed25519 public key (rend-spec-v3 §6), so a
 * client checks the card against the address it dialled with no key distribution at all:
 * {@link verifyCardForOnion}. A JWS signing input starts with the base64url of `{"` and an mmogit signature's
 * input with `mmogit-sig-v1` (docs/protocol.md §2), so neither can be replayed as the other.
 * @module
 */
import { createPublicKey, verify } from 'node:crypto';
import { type AgentCard, canonicalizeAgentCard, generateAgentCardSignature } from '@a2a-js/sdk';
import { SERVICE_DESCRIPTIONS } from '../discovery/a2a-card.js';
import { MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';

/** The onion's virtual port the A2A HTTP server answers on. */
export const A2A_ONION_PORT = 80;
/** Path of the JSON-RPC binding on that server. */
export const A2A_JSONRPC_PATH = '/a2a/jsonrpc';
/** The JWS algorithm of our card signature (RFC 8037: Ed25519 as `EdDSA`). */
export const CARD_SIGNATURE_ALG = 'EdDSA';

/** The A2A card in its JSON form (as served and signed). */
export type AgentCardJson = AgentCard;

export interface CardInput {
  key: AgentKey;
  /** The services of the agent's advertisement; each becomes a skill. */
  services: readonly string[];
  name?: string;
  description?: string;
  agentVersion?: string;
}

/** The base URL of an agent's A2A server. */
export function a2aBaseUrl(onion: string): string {
  return `http://${parseOnionAddress(onion).hostname}`;
}

/** The unsigned card for an agent. */
export function buildA2aCard(input: CardInput): AgentCardJson {
  const onion = input.key.onion;
  const card = {
    name: input.name ?? `mmogit agent ${onion.slice(0, 8)}`,
    description:
      input.description ??
      'An mmogit agent reachable over a Tor onion service. Messages sent here reach its inbox, marked as A2A.',
    supportedInterfaces: [
      { url: `${a2aBaseUrl(onion)}${A2A_JSONRPC_PATH}`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
    ],
    version: input.agentVersion ?? '0.1.0',
    capabilities: { streaming: false, pushNotifications: false },
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: (input.services.length > 0 ? input.services : ['messaging']).map((id) => ({
      id,
      name: id,
      description: SERVICE_DESCRIPTIONS[id] ?? `mmogit service ${id}`,
      tags: ['mmogit'],
    })),
  };
  return card as unknown as AgentCardJson;
}

/** The card with the agent's signature (`kid` = its onion). */
export async function signA2aCard(card: AgentCardJson, key: AgentKey): Promise<AgentCardJson> {
  const sign = generateAgentCardSignature(key.keyObject(), {
    alg: CARD_SIGNATURE_ALG,
    kid: key.onion,
    typ: 'JOSE',
  });
  return sign({ ...card, signatures: [] });
}

function b64urlJson(part: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // typed below
  }
  throw new MmogitError('ERR_BAD_SIGNATURE', 'agent card signature header is not JSON');
}

/**
 * Checks that `card` carries a valid signature by the key of `onion` (the onion the card was fetched from).
 * Throws `ERR_BAD_SIGNATURE` when no signature verifies, or none is by that onion's key.
 *
 * @example await verifyCardForOnion(await (await fetch(`${base}/.well-known/agent-card.json`)).json(), onion)
 */
export function verifyCardForOnion(card: unknown, onion: string): { kid: string } {
  const { hostname, publicKey } = parseOnionAddress(onion);
  const signatures = (card as { signatures?: unknown })?.signatures;
  if (!Array.isArray(signatures) || signatures.length === 0) {
    throw new MmogitError('ERR_BAD_SIGNATURE', `the agent card of ${hostname} is not signed`);
  }
  const payload = Buffer.from(canonicalizeAgentCard(card as AgentCard)).toString('base64url');
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
  for (const s of signatures as { protected?: unknown; signature?: unknown }[]) {
    if (typeof s?.protected !== 'string' || typeof s.signature !== 'string') continue;
    const header = b64urlJson(s.protected);
    if (header.alg !== CARD_SIGNATURE_ALG || header.kid !== hostname) continue;
    const ok = verify(
      null,
      Buffer.from(`${s.protected}.${payload}`),
      key,
      Buffer.from(s.signature, 'base64url'),
    );
    if (ok) return { kid: hostname };
  }
  throw new MmogitError('ERR_BAD_SIGNATURE', `no signature on the agent card verifies against ${hostname}`, {
    details: { onion: hostname, signatures: signatures.length },
  });
}
