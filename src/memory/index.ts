/**
 * Git-backed signed memory: a bare repository of content-addressed, signed entries per agent, and the sync
 * protocol that exchanges them between agents (docs/protocol.md §3).
 * @module
 */
export {
  authorOnion,
  DEFAULT_CONFIDENCE,
  type DecodedEntry,
  decodeEntry,
  ENTRY_FORMAT,
  ENTRY_VERSION,
  type EncodedEntry,
  type Entry,
  entryId,
  entryPath,
  MAX_ENTRY_BYTES,
  MEMORY_LIMITS,
  MEMORY_TYPES,
  type MemoryBody,
  type MemoryInput,
  type MemoryType,
  memoryBody,
  signEntry,
  type Visibility,
} from './entry.js';
export {
  MAX_SHARE_RECIPIENTS,
  SEALED_FORMAT,
  SEALED_KIND,
  SEALED_SUITE,
  SEALED_VERSION,
  type SealedBody,
  SHARE_KIND,
  type ShareBody,
} from './entry-kinds.js';
export { PRIVATE_REF, PUBLIC_REF } from './refs.js';
export {
  type AppendOptions,
  COMMIT_IDENT,
  MemoryStore,
  type OpenOptions,
  type RecallFilter,
  type StoreCheck,
  type VerifiedEntry,
} from './store.js';
export {
  DEFAULT_SYNC_QUOTA,
  DEFAULT_SYNC_TIMEOUT_MS,
  MAX_SYNC_PACK_BYTES,
  SYNC_PROTOCOL_VERSION,
  type SyncOptions,
  type SyncPeer,
  type SyncProgress,
  SyncQuota,
  type SyncQuotaLimits,
  type SyncResult,
  syncOverChannel,
} from './sync/index.js';
