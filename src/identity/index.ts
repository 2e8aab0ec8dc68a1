/**
 * Agent identity: BIP39 phrase → Ed25519 key → v3 onion address, libp2p PeerId and domain-separated signatures.
 * @module
 */
export {
  type CanonicalValue,
  canonicalBytes,
  canonicalJson,
  isCanonicalValue,
  toCanonical,
} from './canonical.js';
export { AgentKey } from './keys.js';
export {
  MNEMONIC_WORDS,
  mnemonicEntropyBits,
  newMnemonic,
  normaliseMnemonic,
  RESTORE_WORD_COUNTS,
  seedFromMnemonic,
} from './mnemonic.js';
export {
  addOnionKeyBlob,
  expandedSecretKey,
  hsPublicKeyFile,
  hsSecretKeyFile,
  isOnionAddress,
  ONION_V3_LENGTH,
  ONION_V3_VERSION,
  type OnionAddress,
  onionChecksum,
  onionFromPublicKey,
  parseOnionAddress,
} from './onion.js';
export {
  parseRustSeedFile,
  readRustSeedFile,
  SEED_FILE_MAX_BYTES,
  type SeedFileProblem,
} from './rust-seed.js';
export {
  privateKeyObject,
  publicKeyObject,
  rawPublicKey,
  SIGNING_CONTEXTS,
  type SigningContext,
  signedBytes,
  verifySignature,
} from './signing.js';
export {
  CONFIG_FILES,
  ensureConfigDir,
  identityPath,
  loadIdentity,
  resolveConfigDir,
  type SaveIdentityOptions,
  saveIdentity,
} from './store.js';
