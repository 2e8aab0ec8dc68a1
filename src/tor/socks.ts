/**
 * Dialing through tor's SocksPort: SOCKS5 (RFC 1928) with per-peer stream isolation (a SOCKS username and
 * password per peer; tor's `IsolateSOCKSAuth`, on by default, puts different credentials on different
 * circuits) and a typed error for each reply code, including tor's extended onion-service codes
 * (prop304, given when the SocksPort has the `ExtendedErrors` flag).
 * @module
 */
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { SocksClient } from 'socks';
import { type AbortOptions, connect, type RetryPolicy, retry } from '../_async.js';
import { abortReason, MmogitError, type MmogitErrorOptions, withTimeout } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import type { TorController } from './control/controller.js';

/** Default time for one SOCKS connect through tor (onion circuits take seconds on a loaded network). */
export const DEFAULT_SOCKS_TIMEOUT_MS = 60_000;
/** Default time for {@link dialOnion}, all retries included. */
export const DEFAULT_DIAL_ONION_TIMEOUT_MS = 90_000;

/** SOCKS5 reply codes: RFC 1928 §6, and tor's extended errors (prop304, tor's socks5.trunnel). */
export const SOCKS_REPLY_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
  240: 'onion service descriptor not found',
  241: 'onion service descriptor is invalid',
  242: 'onion service introduction failed',
  243: 'onion service rendezvous failed',
  244: 'onion service client authorization missing',
  245: 'onion service client authorization wrong',
  246: 'invalid onion service address',
  247: 'onion service introduction timed out',
});

/**
 * Replies worth retrying for an onion that was just published: its descriptor may not be on the HSDirs yet
 * (tor answers 4, or 0xF0 with ExtendedErrors) or the first introduction/rendezvous may fail.
 */
export const RETRYABLE_SOCKS_REPLIES: readonly number[] = Object.freeze([4, 0xf0, 0xf2, 0xf3, 0xf7]);

/** Where the failure happened. */
export type SocksStage = 'proxy-connect' | 'auth' | 'reply' | 'handshake';

/**
 * A SOCKS failure (code `ERR_SOCKS`). `reply` holds the SOCKS5 reply code when the proxy sent one.
 *
 * @example
 * ```ts
 * catch (e) { if (e instanceof SocksError && e.reply === 0xf6) … } // invalid onion address
 * ```
 */
export class SocksError extends MmogitError {
  constructor(message: string, options: MmogitErrorOptions & { reply?: number; stage: SocksStage }) {
    const { reply, stage, ...rest } = options;
    super('ERR_SOCKS', message, {
      ...rest,
      details: {
        ...rest.details,
        stage,
        ...(reply !== undefined
          ? { reply, replyName: SOCKS_REPLY_NAMES[reply] ?? 'unknown reply code' }
          : {}),
      },
    });
  }

  /** The SOCKS5 reply code, if the proxy answered with one. */
  get reply(): number | undefined {
    const r = this.details?.reply;
    return typeof r === 'number' ? r : undefined;
  }

  /** True when {@link dialOnion} would retry this failure. */
  get retryable(): boolean {
    return this.reply !== undefined && RETRYABLE_SOCKS_REPLIES.includes(this.reply);
  }
}

export interface SocksConnectRequest {
  /** tor's SOCKS host; default 127.0.0.1. */
  socksHost?: string;
  socksPort: number;
  /** Destination host name (sent to tor unresolved) or IP. */
  host: string;
  port: number;
  /**
   * Streams with different keys never share a circuit (use the peer's onion or id). The key is hashed into
   * the SOCKS username/password, so it may be anything.
   */
  isolationKey?: string;
}

/** SOCKS5 username/password for an isolation key (RFC 1929 allows 1–255 bytes each). */
export function isolationCredentials(isolationKey: string): { userId: string; password: string } {
  // A fixed prefix keeps us clear of tor's "<torS0X>" extended-parameter usernames (prop351).
  const digest = createHash('sha256').update(isolationKey, 'utf8').digest('hex').slice(0, 32);
  return { userId: `mmogit-${digest}`, password: digest };
}

/**
 * Reads the proxy's side of the SOCKS5 handshake as it arrives, so failures carry the real reply byte
 * (the `socks` package reports only a name, and none for tor's extended codes).
 */
class ReplySniffer {
  private bytes: number[] = [];
  readonly onData = (chunk: Buffer): void => {
    for (let i = 0; i < chunk.length && this.bytes.length < 16; i++) this.bytes.push(chunk[i] as number);
  };

  /** Where the handshake stopped, and the reply code if one came. */
  result(): { stage: SocksStage; reply?: number; authStatus?: number; method?: number } {
    const b = this.bytes;
    if (b.length < 2) return { stage: 'handshake' };
    const method = b[1] as number;
    if (method === 0xff) return { stage: 'auth', method };
    let at = 2;
    if (method === 0x02) {
      if (b.length < 4) return { stage: 'auth', method };
      const authStatus = b[3] as number;
      if (authStatus !== 0) return { stage: 'auth', method, authStatus };
      at = 4;
    }
    if (b.length < at + 2) return { stage: 'reply', method };
    return { stage: 'reply', method, reply: b[at + 1] as number };
  }
}

async function connectTcp(
  host: string,
  port: number,
  signal: AbortSignal,
  what: string,
): Promise<net.Socket> {
  try {
    return await connect({ host, port }, { signal, what });
  } catch (err) {
    if (err instanceof MmogitError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new SocksError(`${what}: cannot reach tor's SOCKS port ${host}:${port}: ${e.message}`, {
      cause: err,
      stage: 'proxy-connect',
      details: { socksHost: host, socksPort: port, errno: e.code },
    });
  }
}

/**
 * Opens a TCP stream to `host:port` through tor's SOCKS5 port. The returned socket is connected end to end.
 *
 * @throws SocksError `ERR_SOCKS` (details.reply = the SOCKS5 reply code), TimeoutError `ERR_TIMEOUT`,
 *   AbortedError `ERR_ABORTED`.
 * @example
 * ```ts
 * const sock = await socksConnect({ socksPort: 9050, host: `${id}.onion`, port: 80, isolationKey: id });
 * ```
 */
export async function socksConnect(
  req: SocksConnectRequest,
  options: AbortOptions = {},
): Promise<net.Socket> {
  const socksHost = req.socksHost ?? '127.0.0.1';
  if (!Number.isInteger(req.socksPort) || req.socksPort < 1 || req.socksPort > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `invalid SOCKS port ${req.socksPort}`);
  }
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `invalid destination port ${req.port}`);
  }
  if (!req.host || Buffer.byteLength(req.host) > 255 || /[\s\0]/.test(req.host)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'invalid destination host');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOCKS_TIMEOUT_MS;
  const what = `SOCKS connect to ${req.host}:${req.port}`;
  const signal = withTimeout(options.signal, timeoutMs, what);
  const raw = await connectTcp(socksHost, req.socksPort, signal, what);
  const sniffer = new ReplySniffer();
  raw.prependListener('data', sniffer.onData);
  const creds = req.isolationKey !== undefined ? isolationCredentials(req.isolationKey) : undefined;
  // The `socks` package takes no AbortSignal: race it, and destroy the socket on abort.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      raw.destroy();
      reject(abortReason(signal, what));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    const { socket } = await Promise.race([
      SocksClient.createConnection({
        proxy: { host: socksHost, port: req.socksPort, type: 5, ...(creds ?? {}) },
        command: 'connect',
        destination: { host: req.host, port: req.port },
        existing_socket: raw,
        timeout: timeoutMs + 1000, // ours fires first
      }),
      aborted,
    ]);
    return socket;
  } catch (err) {
    raw.destroy();
    if (err instanceof MmogitError) throw err;
    if (signal.aborted) throw abortReason(signal, what);
    const r = sniffer.result();
    const details = {
      host: req.host,
      port: req.port,
      ...(r.authStatus !== undefined ? { authStatus: r.authStatus } : {}),
    };
    if (r.reply !== undefined) {
      const name = SOCKS_REPLY_NAMES[r.reply] ?? `unknown reply 0x${r.reply.toString(16)}`;
      throw new SocksError(`${what}: ${name} (SOCKS reply ${r.reply})`, {
        cause: err,
        reply: r.reply,
        stage: 'reply',
        details,
      });
    }
    const why = r.method === 0xff ? 'proxy accepts none of our auth methods' : (err as Error).message;
    throw new SocksError(`${what}: ${why}`, { cause: err, stage: r.stage, details });
  } finally {
    raw.off('data', sniffer.onData);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

export interface DialOnionRequest {
  socksHost?: string;
  socksPort: number;
  /** v3 onion address, with or without `.onion`; checked (checksum, version) before any network use. */
  onion: string;
  port: number;
  /** Defaults to the onion's ServiceID, so each peer gets its own circuits. */
  isolationKey?: string;
  /**
   * Retry {@link RETRYABLE_SOCKS_REPLIES} (e.g. a descriptor not yet published) with exponential backoff.
   * Without it, one attempt.
   */
  retry?: Partial<RetryPolicy>;
}

/** Defaults of {@link DialOnionRequest.retry} (`attempts` is clamped to 1–100). */
export const DEFAULT_ONION_RETRY: RetryPolicy = Object.freeze({
  attempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 4000,
});

/**
 * Connects to `<onion>:<port>` through tor. Validates the address first (`ERR_INVALID_ONION`), isolates the
 * stream per peer, and with `retry` retries while the onion's descriptor is not yet reachable. `timeoutMs`
 * bounds the whole dial, retries included.
 *
 * @example
 * ```ts
 * const sock = await dialOnion({ socksPort, onion: peer.onion, port: 4001, retry: {} }, { timeoutMs: 30_000 });
 * ```
 */
export async function dialOnion(req: DialOnionRequest, options: AbortOptions = {}): Promise<net.Socket> {
  const { hostname, serviceId } = parseOnionAddress(req.onion);
  const what = `dial ${hostname}:${req.port}`;
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_DIAL_ONION_TIMEOUT_MS, what);
  const attempts = req.retry ? (req.retry.attempts ?? DEFAULT_ONION_RETRY.attempts) : 1;
  const policy: RetryPolicy = {
    ...DEFAULT_ONION_RETRY,
    ...req.retry,
    attempts: Math.max(1, Math.min(Math.floor(attempts), 100)),
  };
  return retry(
    () =>
      socksConnect(
        {
          ...(req.socksHost !== undefined ? { socksHost: req.socksHost } : {}),
          socksPort: req.socksPort,
          host: hostname,
          port: req.port,
          isolationKey: req.isolationKey ?? serviceId,
        },
        { signal },
      ),
    policy,
    { signal, what, retryable: (err) => err instanceof SocksError && err.retryable },
  );
}

/**
 * Asks tor for new circuits for new streams (`SIGNAL NEWNYM`, control-spec §3.7). Open streams keep their
 * circuits; tor rate-limits NEWNYM to about one per 10 s and delays extra ones (still answering OK).
 */
export async function newnym(
  control: Pick<TorController, 'signal'>,
  options: AbortOptions = {},
): Promise<void> {
  await control.signal('NEWNYM', options);
}
