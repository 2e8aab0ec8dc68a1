/**
 * Hybrid post-quantum agent channel: X25519 + ML-KEM-768 key agreement authenticated by both agents' Ed25519
 * (onion) keys, then AES-256-GCM frames. Wire format: docs/protocol.md §4.
 * @module
 */

/** Primitives another layer builds on (the memory layer's sealed envelopes): HKDF-SHA256, AES-256-GCM, X25519. */
export {
  hkdf,
  open as aeadOpen,
  seal as aeadSeal,
  wipe,
  type X25519Ephemeral,
  x25519Ephemeral,
  x25519Shared,
} from './_primitives.js';
export { type CipherSuite, PQ_PROTOCOL_VERSION } from './_wire.js';
export { FrameError, type FrameFailure, HandshakeError, type HandshakeFailure } from './errors.js';
export { MAX_FRAME_DATA, MAX_FRAME_LENGTH, MAX_FRAME_PLAINTEXT, REKEY_AFTER_FRAMES } from './frames.js';
export {
  acceptSession,
  HANDSHAKE_TIMEOUT_MS,
  type HandshakeOptions,
  type InitiateOptions,
  initiateSession,
  TRANSCRIPT_LABEL,
} from './handshake.js';
export {
  DEFAULT_MAX_PAYLOAD,
  SEND_TIMEOUT_MS,
  type SecureSession,
  type SessionIoOptions,
  type SessionPeer,
} from './session.js';
