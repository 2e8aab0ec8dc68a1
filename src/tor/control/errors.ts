import { type ErrorCode, MmogitError, type MmogitErrorOptions } from '../../errors.js';

/** Codes a {@link TorControlError} carries. */
export type TorControlErrorCode =
  | 'ERR_TOR_CONTROL_PROTOCOL' // tor said something we cannot parse (details.raw quotes it)
  | 'ERR_TOR_CONTROL_OPERATION' // tor answered 4xx/5xx (details.statusCode, details.raw)
  | 'ERR_TOR_CONTROL_CLOSED'; // the control connection closed or could not be opened

/**
 * A control-port failure, split like stem's `ProtocolError` / `OperationFailed` / `SocketClosed`.
 *
 * @example
 * ```ts
 * try { await tor.getInfo('no-such-key') } catch (e) {
 *   if (e instanceof TorControlError && e.details?.statusCode === 552) … // unrecognised key
 * }
 * ```
 */
export class TorControlError extends MmogitError {
  constructor(code: TorControlErrorCode, message: string, options: MmogitErrorOptions = {}) {
    super(code as ErrorCode, message, options);
  }

  /** tor's three-digit status code, when tor answered with an error reply. */
  get statusCode(): number | undefined {
    const c = this.details?.statusCode;
    return typeof c === 'number' ? c : undefined;
  }
}

/** Authentication failed (`ERR_TOR_AUTH_FAILED`) or no method we may use is offered (`ERR_TOR_AUTH_UNSUPPORTED`). */
export class TorAuthError extends MmogitError {
  constructor(
    code: 'ERR_TOR_AUTH_FAILED' | 'ERR_TOR_AUTH_UNSUPPORTED',
    message: string,
    options: MmogitErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** Shortens a raw reply for error details (replies can hold whole config files). */
export function clip(raw: string, max = 500): string {
  return raw.length > max ? `${raw.slice(0, max)}…` : raw;
}
