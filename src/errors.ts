/**
 * The error tree of mmogit. Every failure a caller can act on is a {@link MmogitError} with a stable
 * `code` (tests and the CLI switch on the code, never on the message) and a `toJSON()` for `--json` output.
 *
 * Layers subclass it for their own failures (`TorControlError`, `HandshakeError`, …); the CLI maps each
 * code's {@link ErrorCategory} to an exit code in exactly one place (`cli/exit-codes.ts`).
 *
 * @example
 * ```ts
 * try { parseOnionAddress(input) } catch (e) {
 *   if (e instanceof MmogitError && e.code === 'ERR_INVALID_ONION') …
 * }
 * ```
 */

/** What kind of failure a code is; the CLI turns each into one exit code. */
export type ErrorCategory =
  | 'usage' // bad input from the user: flags, phrases, onion strings, memory fields
  | 'config' // identity or config missing, unreadable or unsafe
  | 'tor' // tor missing, failed to start, control-port failure, bootstrap failure
  | 'network' // peer unreachable, timeout, connection closed, SOCKS failure
  | 'security' // signature, handshake or verification failure; untrusted input refused
  | 'not-found' // nothing found (discover), unknown entry
  | 'daemon' // agent daemon not running / already running / IPC failure
  | 'aborted' // the caller's AbortSignal fired
  | 'internal'; // a bug: an invariant broke

/** Every stable code, with its category. Adding a code is a minor change; renaming one is a breaking one. */
export const ERROR_CODES = {
  // usage
  ERR_INVALID_ARGUMENT: 'usage',
  ERR_INVALID_MNEMONIC: 'usage',
  ERR_INVALID_ONION: 'usage',
  ERR_INVALID_MEMORY: 'usage',
  ERR_INVALID_MULTIADDR: 'usage',
  ERR_UNKNOWN_CONTACT: 'usage',
  ERR_CONTACT_CLASH: 'usage',
  ERR_BAD_CURSOR: 'usage',
  ERR_FILE_UNREADABLE: 'usage', // `--file` is missing, a directory or unreadable (details.reason)
  ERR_FILE_TOO_LARGE: 'usage', // a file over the sender's or the receiver's size cap (refused before sending)
  ERR_FILE_CHANGED: 'usage', // the file changed while it was being sent
  // config
  ERR_CONFIG_DIR_MISSING: 'config',
  ERR_IDENTITY_MISSING: 'config',
  ERR_IDENTITY_EXISTS: 'config',
  ERR_IDENTITY_CORRUPT: 'config',
  ERR_INVALID_SEED_FILE: 'config',
  ERR_INSECURE_PERMISSIONS: 'config',
  ERR_NETWORK_CONFIG: 'config',
  ERR_CONFIG_INVALID: 'config', // a path in the config dir has the wrong type (a file where a directory belongs)
  ERR_DISK_FULL: 'config', // the file system of the config dir is full (ENOSPC) or over quota (EDQUOT)
  ERR_HOOK_NOT_EXECUTABLE: 'config',
  // tor
  ERR_TOR_NOT_FOUND: 'tor',
  ERR_TOR_START_FAILED: 'tor',
  ERR_TOR_BOOTSTRAP: 'tor',
  ERR_TOR_CONTROL_PROTOCOL: 'tor',
  ERR_TOR_CONTROL_OPERATION: 'tor',
  ERR_TOR_CONTROL_CLOSED: 'tor',
  ERR_TOR_AUTH_FAILED: 'tor',
  ERR_TOR_AUTH_UNSUPPORTED: 'tor',
  ERR_TOR_ONION_PUBLISH: 'tor',
  ERR_PORT_IN_USE: 'tor',
  ERR_TESTNET: 'tor',
  // network
  ERR_TIMEOUT: 'network',
  ERR_SOCKS: 'network',
  ERR_PEER_UNREACHABLE: 'network',
  ERR_CONNECTION_CLOSED: 'network',
  ERR_TRANSPORT_POLICY: 'network',
  ERR_RATE_LIMITED: 'network',
  ERR_SYNC: 'network',
  ERR_MESH: 'network',
  ERR_MESH_EXIT_REFUSED: 'network',
  ERR_PEER_UNSUPPORTED: 'network',
  // security
  ERR_BAD_SIGNATURE: 'security',
  ERR_HANDSHAKE: 'security',
  ERR_BAD_FRAME: 'security',
  ERR_TOO_LARGE: 'security',
  ERR_INVALID_RECORD: 'security',
  ERR_UNTRUSTED_DATA: 'security',
  ERR_FILE_HASH_MISMATCH: 'security', // a received file's sha256 is not the offered one (discarded)
  ERR_FILE_OVERRUN: 'security', // a sender sent past the size it declared, or ended short of it
  // not found
  ERR_NOT_FOUND: 'not-found',
  // daemon
  ERR_DAEMON_NOT_RUNNING: 'daemon',
  ERR_DAEMON_RUNNING: 'daemon',
  ERR_DAEMON_IPC: 'daemon',
  // aborted
  ERR_ABORTED: 'aborted',
  // internal
  ERR_INTERNAL: 'internal',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MmogitErrorOptions {
  cause?: unknown;
  /** Machine-readable context (never secrets). Shown in `--json` output. */
  details?: Record<string, unknown>;
}

/** Base class of every error mmogit throws on purpose. */
export class MmogitError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: MmogitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code];
  }

  toJSON(): { name: string; code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** The caller's AbortSignal fired, or a timeout elapsed (code `ERR_TIMEOUT`). */
export class AbortedError extends MmogitError {
  constructor(message = 'operation aborted', options: MmogitErrorOptions = {}) {
    super('ERR_ABORTED', message, options);
  }
}

export class TimeoutError extends MmogitError {
  constructor(message: string, options: MmogitErrorOptions = {}) {
    super('ERR_TIMEOUT', message, options);
  }
}

/** Is `e` a MmogitError with the given code? Works across module copies (checks the shape, not the class). */
export function hasCode(e: unknown, code: ErrorCode): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** Turns whatever `signal.reason` holds into our typed error. */
export function abortReason(signal: AbortSignal, what: string): MmogitError {
  const reason: unknown = signal.reason;
  if (reason instanceof MmogitError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new TimeoutError(`${what}: timed out`, { cause: reason });
  }
  return new AbortedError(`${what}: aborted`, { cause: reason });
}

/** Throws the typed form of `signal.reason` if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortReason(signal, what);
}

/**
 * Combines an optional caller signal with a timeout. The timeout's reason is a {@link TimeoutError} naming
 * `what`, so callers report "tor bootstrap: timed out after 60000 ms" rather than a bare DOMException.
 */
export function withTimeout(signal: AbortSignal | undefined, ms: number, what: string): AbortSignal {
  return deadline(signal, ms, what).signal;
}

/**
 * {@link withTimeout} with its timer's release: `clear()` once the operation ended, so the timer, its
 * controller and the caller's closure do not stay in memory until `ms` passes. On a path taken per message (a
 * 30 s send timeout at 1,000 messages a second) those would be tens of thousands of live timers.
 */
export function deadline(
  signal: AbortSignal | undefined,
  ms: number,
  what: string,
): { signal: AbortSignal; clear(): void } {
  const timeout = new AbortController();
  const timer = setTimeout(
    () =>
      timeout.abort(new TimeoutError(`${what}: timed out after ${ms} ms`, { details: { timeoutMs: ms } })),
    ms,
  );
  timer.unref?.();
  return {
    signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
    clear: () => clearTimeout(timer),
  };
}

/**
 * A short, printable description of a value that came from outside (a peer's frame, a file on disk) for use in an
 * error message. Never throws: `String(x)` and template literals call a hostile object's own `toString` or
 * `Symbol.toPrimitive`, which may be missing, not a function, or throw; this reads no member of an object.
 * Strings are quoted and cut to `max` characters.
 */
export function describeValue(x: unknown, max = 40): string {
  if (typeof x === 'string') return JSON.stringify(x.length > max ? `${x.slice(0, max)}…` : x);
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') return String(x);
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? 'an object' : typeof x;
}
