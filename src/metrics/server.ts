/**
 * The Prometheus endpoint: `GET /metrics` on one loopback (or explicitly named) address, the text exposition
 * of the agent's registries (exposition format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/). Nothing else is served: any other path is
 * 404, any other method 405, and every connection has a deadline, so a scraper (or anything else that finds
 * the port) can hold no resources for long.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { Registry } from 'prom-client';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';

const log = createLogger('mmogit:metrics');

/** Open connections the endpoint accepts at once (a scraper needs one). */
export const METRICS_MAX_CONNECTIONS = 16;
/** Deadline for a request's headers, and for the whole request. */
export const METRICS_REQUEST_TIMEOUT_MS = 10_000;

/** Where the endpoint listens. */
export interface MetricsAddress {
  host: string;
  port: number;
  /** Whether `host` is a loopback address (127.0.0.0/8, ::1). */
  loopback: boolean;
}

function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * Parses `--metrics`: `PORT` (then 127.0.0.1), `HOST:PORT` or `[V6]:PORT`; port 0 takes any free port. The host must be an IP literal or
 * `localhost` (no name is resolved: resolving it would be a DNS lookup outside tor). A loopback address is
 * always accepted; another address only as a literal the user typed (`loopback: false`, the caller warns);
 * the wildcards `0.0.0.0` and `::` are refused, since they name no interface and would expose the endpoint on
 * every network the machine is on.
 *
 * @throws `ERR_INVALID_ARGUMENT`
 * @example
 * parseMetricsAddress('9464');            // { host: '127.0.0.1', port: 9464, loopback: true }
 * parseMetricsAddress('[::1]:9464');      // { host: '::1', port: 9464, loopback: true }
 * parseMetricsAddress('10.0.0.5:9464');   // { host: '10.0.0.5', port: 9464, loopback: false }
 */
export function parseMetricsAddress(value: string): MetricsAddress {
  const s = value.trim();
  const bad = (why: string) =>
    new MmogitError('ERR_INVALID_ARGUMENT', `--metrics "${value}": ${why}`, { details: { metrics: value } });
  let host = '127.0.0.1';
  let portText = s;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(s);
  if (m) {
    host = (m[1] ?? m[2] ?? '').toLowerCase();
    portText = m[3] ?? '';
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad('expected PORT, HOST:PORT or [IPv6]:PORT');
  const port = Number(portText);
  // Port 0: any free port (the daemon's status names the one it got).
  if (port > 65535) throw bad('the port must be in 0..65535');
  if (host === 'localhost') host = '127.0.0.1';
  if (isIP(host) === 0) throw bad('the host must be an IP address (names are not resolved)');
  if (host === '0.0.0.0' || host === '::' || /^0+(\.0+){3}$/.test(host)) {
    throw bad('a wildcard address would serve every network; name one interface address');
  }
  return { host, port, loopback: isLoopback(host) };
}

export interface MetricsServer {
  /** `http://HOST:PORT/metrics` */
  readonly url: string;
  readonly address: MetricsAddress;
  close(): Promise<void>;
}

export interface ServeMetricsOptions {
  address: MetricsAddress;
  /** The registries to expose, merged (names must not collide). */
  registries: readonly Registry[];
}

/**
 * Listens on `address` and serves the merged `registries` at `/metrics`.
 *
 * @throws `ERR_PORT_IN_USE` (the port is taken), `ERR_INVALID_ARGUMENT` (cannot bind that address)
 * @example
 * const server = await serveMetrics({ address: parseMetricsAddress('9464'), registries: [metrics.registry] });
 * // curl http://127.0.0.1:9464/metrics
 * await server.close();
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const registry =
    options.registries.length === 0
      ? new Registry()
      : options.registries.length === 1
        ? options.registries[0]!
        : Registry.merge([...options.registries]);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end();
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => {
        log('collect failed: %s', e instanceof Error ? e.message : String(e));
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collect failed\n');
      },
    );
  };
  const server = createServer(
    {
      requestTimeout: METRICS_REQUEST_TIMEOUT_MS,
      headersTimeout: METRICS_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 8 * 1024,
    },
    handler,
  );
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  // An idle socket gets the same deadline as a request (headersTimeout only runs once bytes arrive).
  server.on('connection', (socket) => socket.setTimeout(METRICS_REQUEST_TIMEOUT_MS, () => socket.destroy()));
  const { host, port } = options.address;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new MmogitError('ERR_PORT_IN_USE', `metrics port ${host}:${port} is in use`, {
              details: { address: `${host}:${port}` },
            })
          : new MmogitError('ERR_INVALID_ARGUMENT', `cannot serve metrics on ${host}:${port}: ${e.code}`, {
              cause: e,
            }),
      );
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const address = { ...options.address, port: bound.port };
  log('serving metrics on %s:%d', shown, bound.port);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${bound.port}/metrics`,
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
