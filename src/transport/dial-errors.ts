/**
 * libp2p's dial failures as our typed errors, and which of them are answers rather than route faults.
 * @module
 */
import { abortReason, type ErrorCode, MmogitError } from '../errors.js';

/** Dial failures that are answers (policy, identity, protocol), not route faults: never retried. */
export const FINAL_DIAL_CODES: readonly ErrorCode[] = [
  'ERR_TRANSPORT_POLICY',
  'ERR_HANDSHAKE',
  'ERR_NOT_FOUND',
];

/**
 * The typed form of a libp2p dial failure: the caller's abort or deadline, `ERR_NOT_FOUND` (protocol not
 * spoken), `ERR_HANDSHAKE` (noise could not prove the key), `ERR_TRANSPORT_POLICY` (refused by policy), else
 * `ERR_PEER_UNREACHABLE` with every address's reason.
 */
export function dialError(err: unknown, what: string, signal: AbortSignal): MmogitError {
  if (signal.aborted) return abortReason(signal, what);
  if (err instanceof MmogitError) return err;
  const e = err as Error;
  if (e?.name === 'UnsupportedProtocolError') {
    return new MmogitError('ERR_NOT_FOUND', `${what}: the peer does not support this protocol`, {
      cause: err,
    });
  }
  if (e?.name === 'EncryptionFailedError') {
    // noise could not prove the remote holds the key we dialled (e.g. an onion served by another key)
    return new MmogitError('ERR_HANDSHAKE', `${what}: secure handshake failed: ${e.message}`, { cause: err });
  }
  if (e?.name === 'DialDeniedError' || e?.name === 'ConnectionDeniedError') {
    return new MmogitError('ERR_TRANSPORT_POLICY', `${what}: refused by transport policy (${e.message})`, {
      cause: err,
    });
  }
  const inner =
    e instanceof AggregateError ? e.errors.map((x) => (x as Error).message).join('; ') : e?.message;
  return new MmogitError('ERR_PEER_UNREACHABLE', `${what}: ${inner}`, { cause: err });
}
