/**
 * mmogit: peer-to-peer agents over Tor onion services, with git-backed signed memory and a hybrid post-quantum
 * channel. The package's front door is {@link Agent}; the layers have their own subpath exports
 * (`mmogit/identity`, `mmogit/tor`, `mmogit/memory`, …).
 *
 * Importing this module never loads libp2p: `Agent.start()` loads the network stack lazily, so offline use
 * (identity, remember, recall) and CLI start-up stay fast. Only type re-exports come from the network modules.
 *
 * @example
 * ```ts
 * import { Agent } from 'mmogit';
 * const { agent } = await Agent.init({ configDir: '/tmp/alice' });
 * await agent.start({ network: process.env.MMOGIT_TOR_NETWORK });
 * console.log(agent.address);
 * await agent.close();
 * ```
 * @module
 */
export { Agent, type AgentInitOptions, type AgentOpenOptions } from './agent/agent.js';
export type {
  DeliveredEvent,
  PingResult,
  QueuedEvent,
  ReceivedMessage,
  SendResult,
} from './agent/messaging.js';
export type {
  AgentConfig,
  AgentProgress,
  AgentStartOptions,
  DiscoveredAgent,
  RuntimeStatus,
  SyncPeerResult,
  TransportPolicy,
} from './agent/runtime.js';
export { ERROR_CODES, type ErrorCode, hasCode, MmogitError } from './errors.js';
export { AgentKey, onionFromPublicKey, parseOnionAddress } from './identity/index.js';
export type { Entry, MemoryInput, MemoryType, Visibility } from './memory/entry.js';
export type { RecallFilter, VerifiedEntry } from './memory/store.js';
