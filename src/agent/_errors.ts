/**
 * Error conversions shared by the messaging modules.
 * @module
 */
import { ERROR_CODES, type ErrorCode, MmogitError } from '../errors.js';

/** The file system errors that mean "no room": the device is full, or the user's quota is. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/**
 * A write that failed for lack of space, as `ERR_DISK_FULL` (what to do in the message; `details.errno`);
 * anything else unchanged. What was written before is intact: every store writes to a temporary name and
 * renames, or appends whole records, so a short write leaves no half entry behind.
 */
export function diskFullError(e: unknown, what = 'write'): unknown {
  const errno = (e as { code?: unknown } | null)?.code;
  if (typeof errno !== 'string' || !NO_SPACE.has(errno)) return e;
  return new MmogitError(
    'ERR_DISK_FULL',
    `${what} failed: no space left on the device of the config dir (${errno}); free some space and retry — nothing stored before was changed`,
    { cause: e, details: { errno } },
  );
}

/**
 * Whatever was thrown, as a typed error: a full disk becomes `ERR_DISK_FULL`, aborts and timeouts
 * `ERR_TIMEOUT`, the rest `ERR_INTERNAL`.
 */
export function asMmogitError(e: unknown): MmogitError {
  if (e instanceof MmogitError) return e;
  const full = diskFullError(e);
  if (full instanceof MmogitError) return full;
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return new MmogitError('ERR_TIMEOUT', e.message, { cause: e });
  }
  return new MmogitError('ERR_INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}

/** True when `code` is one of ours (a peer or the daemon may send any string). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** A peer's `err` frame as a typed error; a code we do not know becomes `ERR_INTERNAL`. */
export function remoteError(frame: { code: string; message: string }, peer: string): MmogitError {
  const code: ErrorCode = isErrorCode(frame.code) ? frame.code : 'ERR_INTERNAL';
  return new MmogitError(code, `${peer} refused: ${frame.message}`, { details: { peer, remote: true } });
}
