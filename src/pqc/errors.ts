import { MmogitError, type MmogitErrorOptions } from '../errors.js';

/**
 * Why a handshake failed (`details.reason` of a {@link HandshakeError}):
 * - `version`: the peer speaks another protocol version (or not this protocol at all: bad magic);
 * - `unsupported-suite`: no cipher suite both sides accept (e.g. a classical-only peer while PQ is required);
 * - `malformed`: a field cannot be valid (reserved bits, unknown message type, an invalid public key);
 * - `truncated`: the connection ended inside a handshake message;
 * - `tampered`: authenticated encryption of the identity part failed: a byte of the transcript was changed,
 *   or a handshake message was replayed into a session with other ephemeral keys;
 * - `wrong-identity`: the responder is not the onion the initiator dialled;
 * - `bad-signature`: the Ed25519 signature over the transcript does not verify.
 */
export type HandshakeFailure =
  | 'version'
  | 'unsupported-suite'
  | 'malformed'
  | 'truncated'
  | 'tampered'
  | 'wrong-identity'
  | 'bad-signature';

/**
 * The post-quantum handshake failed (code `ERR_HANDSHAKE`). `reason` says why; `remote` is true when the peer
 * refused us with an alert (then `reason` is the peer's).
 *
 * @example
 * ```ts
 * try { await initiateSession(ch, key, { expectedPeer }) } catch (e) {
 *   if (e instanceof HandshakeError && e.reason === 'wrong-identity') …
 * }
 * ```
 */
export class HandshakeError extends MmogitError {
  readonly reason: HandshakeFailure;

  constructor(
    reason: HandshakeFailure,
    message: string,
    options: MmogitErrorOptions & { remote?: boolean } = {},
  ) {
    super('ERR_HANDSHAKE', `pq handshake: ${message}`, {
      cause: options.cause,
      details: { ...options.details, reason, ...(options.remote ? { remote: true } : {}) },
    });
    this.reason = reason;
  }
}

/** Why a traffic frame was refused (`details.reason` of a {@link FrameError}). */
export type FrameFailure = 'auth' | 'truncated' | 'too-large' | 'malformed';

/**
 * A traffic frame was refused: `ERR_BAD_FRAME` (failed authentication, truncated, unknown type) or
 * `ERR_TOO_LARGE` (a frame over the maximum, or a payload over `maxPayload`). The session is dead afterwards.
 */
export class FrameError extends MmogitError {
  readonly reason: FrameFailure;

  constructor(reason: FrameFailure, message: string, options: MmogitErrorOptions = {}) {
    super(reason === 'too-large' ? 'ERR_TOO_LARGE' : 'ERR_BAD_FRAME', `secure channel: ${message}`, {
      cause: options.cause,
      details: { ...options.details, reason },
    });
    this.reason = reason;
  }
}
