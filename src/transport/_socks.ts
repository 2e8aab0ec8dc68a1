// Internal SOCKS5 dialer used until src/tor/socks.ts lands; same shape as its announced `socksConnect`, so the
// switch is a one-line import change.
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { abortReason, MmogitError, throwIfAborted, withTimeout } from '../errors.js';

/** Tor needs far longer than a LAN: a cold onion connect builds a rendezvous circuit (seconds). */
export const DEFAULT_SOCKS_CONNECT_TIMEOUT_MS = 60_000;

export interface SocksTarget {
  socksHost: string;
  socksPort: number;
  host: string;
  port: number;
  /** Sent as SOCKS5 username/password so tor (IsolateSOCKSAuth) keeps separate circuits per key. */
  isolationKey?: string;
}

/** Opens a TCP stream to `host:port` through a SOCKS5 proxy (tor's SocksPort); the host is resolved by tor. */
export async function socksConnect(
  target: SocksTarget,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Socket> {
  throwIfAborted(options.signal, 'socks connect');
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOCKS_CONNECT_TIMEOUT_MS;
  const signal = withTimeout(options.signal, timeoutMs, `socks connect to ${target.host}:${target.port}`);
  const pending = SocksClient.createConnection({
    command: 'connect',
    destination: { host: target.host, port: target.port },
    proxy: {
      host: target.socksHost,
      port: target.socksPort,
      type: 5,
      ...(target.isolationKey ? { userId: target.isolationKey, password: target.isolationKey } : {}),
    },
    // the socks package takes no AbortSignal; give it our bound as well and race the signal below
    timeout: timeoutMs,
    set_tcp_nodelay: true,
  });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortReason(signal, 'socks connect'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const { socket } = await Promise.race([pending, aborted]);
    return socket;
  } catch (err) {
    // if the race was lost to the signal, close the socket the proxy may still hand us
    pending.then(({ socket }) => socket.destroy()).catch(() => {});
    if (err instanceof MmogitError) throw err;
    throw new MmogitError(
      'ERR_SOCKS',
      `socks connect to ${target.host}:${target.port} failed: ${(err as Error).message}`,
      { cause: err, details: { host: target.host, port: target.port } },
    );
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
