/**
 * The descriptive part of an advertisement, shaped after the A2A (Agent2Agent) Agent Card so that A2A tooling
 * (e.g. `@a2a-js/sdk`) can read it as is. The card carries the fields of A2A v1.0 (`supportedInterfaces` with
 * `protocolBinding`) and, for readers of the 0.3 schema that `@a2a-js/sdk` 0.3 types, the top-level `url`,
 * `preferredTransport` and `protocolVersion`. Unknown members are ignored by both, so a later A2A-over-onion
 * binding (e.g. JSON-RPC on `http://<onion>/`) is one more `supportedInterfaces` entry: no format change.
 *
 * The signed envelope, the keys and the onion binding are ours (see advertisement.ts); the card is covered by
 * the envelope's signature but carries no authority of its own.
 * @module
 */

/** Our binding name in `supportedInterfaces[].protocolBinding` (A2A v1.0 allows open-form bindings). */
export const MMOGIT_PROTOCOL_BINDING = 'MMOGIT-LIBP2P-ONION';
/** Version of our binding, in `supportedInterfaces[].protocolVersion`. */
export const MMOGIT_BINDING_VERSION = '1.0';
/** The A2A schema revision the 0.3-compatible top-level members follow. */
export const A2A_COMPAT_PROTOCOL_VERSION = '0.3.0';
/** URL scheme of our interface entry: `mmogit://<56 chars>.onion[:port]`. */
export const MMOGIT_URL_SCHEME = 'mmogit:';

/** A2A `AgentSkill`: `id` is the mmogit service name (e.g. `memory_sync`). */
export interface AgentSkill {
  id: string;
  name: string;
  description: string;
  tags: string[];
}

/** A2A v1.0 `AgentInterface`. */
export interface AgentInterface {
  url: string;
  protocolBinding: string;
  protocolVersion: string;
}

/** A2A `AgentExtension`: a capability named by URI, with optional parameters. */
export interface AgentExtension {
  uri: string;
  description?: string;
  required?: boolean;
  params?: Record<string, unknown>;
}

/** The subset of the A2A Agent Card that advertisements carry. */
export interface AgentCard {
  name: string;
  description: string;
  /** The agent software's version (A2A `version`), not the advertisement format's. */
  version: string;
  /** A2A v1.0: ordered, first preferred. Ours is first. */
  supportedInterfaces: AgentInterface[];
  /** A2A 0.3 compatibility: same as `supportedInterfaces[0].url`. */
  url: string;
  /** A2A 0.3 compatibility: same as `supportedInterfaces[0].protocolBinding`. */
  preferredTransport: string;
  /** A2A 0.3 compatibility. */
  protocolVersion: string;
  /** `extensions`: A2A `AgentExtension`s, e.g. a mesh relay's descriptor (docs/protocol.md §8.8). */
  capabilities: { streaming: boolean; pushNotifications: boolean; extensions?: AgentExtension[] };
  defaultInputModes: string[];
  defaultOutputModes: string[];
  skills: AgentSkill[];
}

/** Human descriptions of the services mmogit knows; others get a generic one. */
export const SERVICE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  memory_sync: 'Synchronises git-backed signed memory with peers over the post-quantum channel.',
  messaging: 'Receives signed end-to-end encrypted messages over the post-quantum channel.',
};

/** The onion URL of our interface entry. */
export function mmogitInterfaceUrl(onion: string, port?: number): string {
  return `mmogit://${onion}${port === undefined ? '' : `:${port}`}`;
}

/**
 * Builds the A2A-shaped card for an agent.
 *
 * @example buildAgentCard({ onion, services: ['memory_sync'], name: 'alice' }).skills[0].id === 'memory_sync'
 */
export function buildAgentCard(input: {
  onion: string;
  port?: number;
  services: readonly string[];
  name?: string;
  description?: string;
  agentVersion?: string;
  extensions?: readonly AgentExtension[];
}): AgentCard {
  const url = mmogitInterfaceUrl(input.onion, input.port);
  return {
    name: input.name ?? `mmogit agent ${input.onion.slice(0, 8)}`,
    description: input.description ?? 'An mmogit agent reachable over a Tor onion service.',
    version: input.agentVersion ?? '0.1.0',
    supportedInterfaces: [
      { url, protocolBinding: MMOGIT_PROTOCOL_BINDING, protocolVersion: MMOGIT_BINDING_VERSION },
    ],
    url,
    preferredTransport: MMOGIT_PROTOCOL_BINDING,
    protocolVersion: A2A_COMPAT_PROTOCOL_VERSION,
    capabilities: {
      streaming: false,
      pushNotifications: false,
      ...(input.extensions?.length ? { extensions: [...input.extensions] } : {}),
    },
    defaultInputModes: ['application/json'],
    defaultOutputModes: ['application/json'],
    skills: input.services.map((id) => ({
      id,
      name: id,
      description: SERVICE_DESCRIPTIONS[id] ?? `mmogit service ${id}`,
      tags: ['mmogit'],
    })),
  };
}
