/**
 * Reading and refusing handshake messages over a ByteChannel: exact reads that turn a close into `truncated`,
 * headers whose alerts become the peer's typed reason, a best-effort alert before hanging up, and the runner
 * that bounds a handshake and aborts the channel when it fails.
 * @module
 */
import { abortReason, hasCode } from '../errors.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import {
  ALERT_UNSUPPORTED_SUITE,
  ALERT_VERSION,
  encodeHeader,
  HEADER_LEN,
  MSG_ALERT,
  parseHeader,
} from './_wire.js';
import { HandshakeError, type HandshakeFailure } from './errors.js';
import { HANDSHAKE_TIMEOUT_MS, type HandshakeOptions } from './handshake-options.js';
import { deadline } from './session.js';

/** Reads exactly `n` bytes; the channel closing first is `truncated` (`what` names the part). */
export async function read(
  channel: ByteChannel,
  n: number,
  signal: AbortSignal,
  what: string,
): Promise<Uint8Array> {
  try {
    return await channel.readExactly(n, { signal });
  } catch (e) {
    if (hasCode(e, 'ERR_CONNECTION_CLOSED')) {
      throw new HandshakeError('truncated', `connection ended while reading ${what}`, { cause: e });
    }
    throw e;
  }
}

/** Reads a header; an alert from the peer becomes the peer's reason with `remote: true`. */
export async function readHeader(
  channel: ByteChannel,
  signal: AbortSignal,
  expectedType: number,
  first: boolean,
): Promise<number> {
  const bytes = await read(channel, HEADER_LEN, signal, `message ${expectedType} header`);
  let header: ReturnType<typeof parseHeader>;
  try {
    header = parseHeader(bytes);
  } catch (e) {
    // Bad magic on a later message is a broken stream, not another protocol.
    if (!first && e instanceof HandshakeError && e.reason === 'version') {
      throw new HandshakeError('malformed', `message ${expectedType} has a bad header`, { cause: e });
    }
    throw e;
  }
  if (header.type === MSG_ALERT) {
    const reason: HandshakeFailure =
      header.param === ALERT_VERSION
        ? 'version'
        : header.param === ALERT_UNSUPPORTED_SUITE
          ? 'unsupported-suite'
          : 'malformed';
    throw new HandshakeError(reason, `peer refused the handshake (${reason})`, { remote: true });
  }
  if (header.type !== expectedType) {
    throw new HandshakeError('malformed', `expected message ${expectedType}, got type ${header.type}`);
  }
  return header.param;
}

/** Best-effort alert before we hang up, so the peer gets a typed reason instead of a bare close. */
export async function sendAlert(channel: ByteChannel, code: number, signal: AbortSignal): Promise<void> {
  try {
    await channel.write(encodeHeader(MSG_ALERT, code), { signal });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      channel.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1_000);
      }),
    ]);
    clearTimeout(timer);
  } catch {
    // The peer may already be gone; the local error is what matters.
  }
}

/** Runs `body` under the handshake deadline; on any failure the channel is aborted. */
export async function runHandshake<T>(
  channel: ByteChannel,
  options: HandshakeOptions,
  what: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { signal, done } = deadline(options.signal, options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS, what);
  try {
    if (signal.aborted) throw abortReason(signal, what);
    return await body(signal);
  } catch (e) {
    // A failed handshake leaves the channel in an unknown state: tear it down.
    channel.abort(e instanceof Error ? e : new Error(String(e)));
    throw e;
  } finally {
    done();
  }
}
