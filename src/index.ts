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
export type { AgentEvents, RuntimeEvent } from './agent/agent-events.js';
export { type Contact, ContactBook } from './agent/contacts.js';
export type { FileProgress, SendFileOptions, SendFileResult } from './agent/files-send.js';
export { DEFAULT_MAX_FILE_BYTES, FILE_MESSAGE_TYPE, type FileInfo } from './agent/files-wire.js';
export {
  type AnyEnvelope,
  type JsonValue,
  MESSAGE_TYPES,
  type MessageEnvelopeV2,
} from './agent/messaging-envelope-v2.js';
export type {
  DeliveredEvent,
  InboxFilter,
  MessageInput,
  PendingMessage,
  PingResult,
  QueuedEvent,
  ReceivedMessage,
  RefusedEvent,
  SendResult,
} from './agent/messaging-types.js';
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
