/**
 * Calling A2A agents through tor: a `fetch` whose every connection goes through tor's SOCKS port (onions and
 * clearnet hosts alike — never a direct connection), and the stock `@a2a-js/sdk` client built on it.
 *
 * @example
 * ```ts
 * const { client, card } = await a2aClient(bobOnion, { socksPort });
 * const result = await client.sendMessage({ message: userMessage('hello') });
 * ```
 * @module
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { type AgentCard, type Message, Role, type SendMessageRequest } from '@a2a-js/sdk';
import {
  type Client,
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
} from '@a2a-js/sdk/client';
import { MmogitError, withTimeout } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import { dialOnion, socksConnect } from '../tor/socks.js';
import { A2A_ONION_PORT, verifyCardForOnion } from './card.js';

/** Bound on one HTTP exchange through tor (dial included). */
export const DEFAULT_A2A_FETCH_TIMEOUT_MS = 90_000;
/** Largest request and response body the client sends or reads. */
export const MAX_A2A_BODY_BYTES = 4 * 1024 * 1024;

export interface SocksFetchOptions {
  socksHost?: string;
  socksPort: number;
  timeoutMs?: number;
}

/** `<onion>` or `<onion>.onion` → `http://<onion>.onion`; a URL stays as it is (checked). */
export function a2aTargetUrl(target: string): URL {
  if (!target.includes('/') && !target.includes(':')) {
    return new URL(`http://${parseOnionAddress(target).hostname}`);
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `"${target}" is neither an onion address nor a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `unsupported URL scheme ${url.protocol} (http or https)`);
  }
  if (url.hostname.endsWith('.onion')) parseOnionAddress(url.hostname);
  return url;
}

function capped(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new MmogitError('ERR_TOO_LARGE', `A2A response larger than ${max} bytes`));
      else cb(null, chunk);
    },
  });
}

async function torSocket(url: URL, options: SocksFetchOptions, signal: AbortSignal): Promise<Socket> {
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : A2A_ONION_PORT;
  const socksHost = options.socksHost ?? '127.0.0.1';
  const socket = url.hostname.endsWith('.onion')
    ? await dialOnion(
        { socksHost, socksPort: options.socksPort, onion: url.hostname, port, retry: {} },
        { signal },
      )
    : await socksConnect(
        { socksHost, socksPort: options.socksPort, host: url.hostname, port, isolationKey: url.hostname },
        { signal },
      );
  if (url.protocol !== 'https:') return socket;
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername: url.hostname }, () => resolve(tls));
    tls.once('error', reject);
  });
}

/**
 * A WHATWG `fetch` that connects through tor's SOCKS port only. Bodies are capped at
 * {@link MAX_A2A_BODY_BYTES} both ways; each call is bounded by `timeoutMs` and the request's own signal.
 */
export function socksFetch(options: SocksFetchOptions): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = a2aTargetUrl(req.url);
    const timeoutMs = options.timeoutMs ?? DEFAULT_A2A_FETCH_TIMEOUT_MS;
    const signal = withTimeout(req.signal, timeoutMs, `A2A ${req.method} ${url.host}`);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    if (body && body.length > MAX_A2A_BODY_BYTES) {
      throw new MmogitError('ERR_TOO_LARGE', `A2A request larger than ${MAX_A2A_BODY_BYTES} bytes`);
    }
    const socket = await torSocket(url, options, signal);
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => {
      headers[k] = v;
    });
    if (body) headers['content-length'] = String(body.length);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = httpRequest(
        {
          method: req.method,
          host: url.hostname,
          path: `${url.pathname}${url.search}`,
          headers: { ...headers, host: url.host },
          createConnection: () => socket,
          signal,
        },
        resolve,
      );
      r.once('error', (e) => reject(signal.aborted ? signal.reason : e));
      r.end(body);
    });
    const responseHeaders = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const one of v) responseHeaders.append(k, one);
      else if (v !== undefined) responseHeaders.set(k, v);
    }
    const nullBody = res.statusCode === 204 || res.statusCode === 304 || req.method === 'HEAD';
    const stream = nullBody ? null : (Readable.toWeb(res.pipe(capped(MAX_A2A_BODY_BYTES))) as ReadableStream);
    return new Response(stream, { status: res.statusCode ?? 502, headers: responseHeaders });
  };
}

/** A user message with text and/or a JSON data part, as `SendMessage` takes it. */
export function userMessage(text: string, data?: unknown): Message {
  return {
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [
      ...(text !== ''
        ? [
            {
              content: { $case: 'text' as const, value: text },
              metadata: undefined,
              filename: '',
              mediaType: 'text/plain',
            },
          ]
        : []),
      ...(data !== undefined
        ? [
            {
              content: { $case: 'data' as const, value: data },
              metadata: undefined,
              filename: '',
              mediaType: 'application/json',
            },
          ]
        : []),
    ],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

/** A `SendMessage` request for `message` (blocking, the default). */
export function sendRequest(message: Message): SendMessageRequest {
  return { tenant: '', message, configuration: undefined, metadata: undefined };
}

export interface A2aClientOptions extends SocksFetchOptions {
  /** Require a card signature by the onion's key (default true for onion targets). */
  verifyCard?: boolean;
}

/**
 * Fetches the agent card of `target` (an onion or a URL) through tor and, for an onion, checks its signature
 * against the onion's key (`ERR_BAD_SIGNATURE` when it does not verify).
 */
export async function fetchA2aCard(
  target: string,
  options: A2aClientOptions,
): Promise<{ card: AgentCard; verified: boolean; url: URL }> {
  const url = a2aTargetUrl(target);
  const resolver = new DefaultAgentCardResolver({ fetchImpl: socksFetch(options) });
  const card = await resolver.resolve(url.origin).catch((e: unknown) => {
    throw e instanceof MmogitError
      ? e
      : new MmogitError(
          'ERR_PEER_UNREACHABLE',
          `could not fetch the agent card of ${url.host}: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
  });
  const onion = url.hostname.endsWith('.onion') ? url.hostname : null;
  let verified = false;
  if (onion && options.verifyCard !== false) {
    verifyCardForOnion(card, onion);
    verified = true;
  }
  return { card, verified, url };
}

/** {@link fetchA2aCard}, then the stock SDK client for the card's JSON-RPC interface (HTTP through tor). */
export async function a2aClient(
  target: string,
  options: A2aClientOptions,
): Promise<{ client: Client; card: AgentCard; verified: boolean }> {
  const { card, verified } = await fetchA2aCard(target, options);
  const fetchImpl = socksFetch(options);
  const resolver = new DefaultAgentCardResolver({ fetchImpl });
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl })],
      cardResolver: resolver,
    }),
  );
  return { client: await factory.createFromAgentCard(card), card, verified };
}
