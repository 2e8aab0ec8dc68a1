/**
 * The agent's A2A v1.0 server (JSON-RPC binding), built from the `@a2a-js/sdk` pieces: `DefaultRequestHandler`,
 * `agentCardHandler` and `jsonRpcHandler` on express. It listens on a Unix socket (or 127.0.0.1 when tor is
 * not ours and may not reach the socket), never on a public address; tor forwards the onion's port 80 to it.
 *
 * Everything that reaches it is untrusted: bodies are capped, each connection (tor opens one per stream) has
 * a token bucket, concurrent tasks are capped, header and request deadlines stop slowloris. Every refusal is a
 * JSON-RPC error object, never a dropped process.
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { AGENT_CARD_PATH, type AgentCard } from '@a2a-js/sdk';
import { DefaultRequestHandler } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createLogger } from '../_log.js';
import { closeOnionTarget, listenOnionTarget, type OnionTargetListen } from '../tor/onion-target.js';
import { A2A_JSONRPC_PATH } from './card.js';
import { type A2aTask, createExecutor } from './executor.js';
import type { A2aJournal } from './journal.js';
import { ProofChecker } from './proof.js';
import { inSdkScope, routeSdkConsole } from './sdk-console.js';
import { BoundedTaskStore, DEFAULT_MAX_TASKS } from './task-store.js';

const log = createLogger('mmogit:a2a');

/** Limits of the A2A server (all bounded; defaults below). */
export interface A2aLimits {
  /** Largest request body (default 64 KiB, the size of an mmogit message's text). */
  maxBodyBytes?: number;
  /** Tasks being executed at once (default 32); more are refused with a JSON-RPC error. */
  maxConcurrentTasks?: number;
  /** Tasks kept for GetTask (default 1,000). */
  maxStoredTasks?: number;
  /** Requests per second on one connection (default 10). */
  perConnectionPerSecond?: number;
  /** Open connections at once (default 64). */
  maxConnections?: number;
  /** A request's headers must arrive within this (default 10 s); the whole request within `requestTimeoutMs`. */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** How long SendMessage waits for the program's answer (default 20 s). */
  answerWaitMs?: number;
  /**
   * A whole exchange, from the request's arrival to the last byte of its response, must end within this
   * (default `requestTimeoutMs + answerWaitMs`); then the connection is cut. Node's own deadlines end when the
   * request has been read, so without this a client that never reads its answer held the connection (one of
   * `maxConnections`) and the buffered response for ever.
   */
  exchangeTimeoutMs?: number;
}

export const DEFAULT_A2A_LIMITS = {
  maxBodyBytes: 64 * 1024,
  maxConcurrentTasks: 32,
  maxStoredTasks: DEFAULT_MAX_TASKS,
  perConnectionPerSecond: 10,
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  answerWaitMs: 20_000,
} as const satisfies Required<Omit<A2aLimits, 'exchangeTimeoutMs'>>;

/**
 * Deepest JSON nesting a request body may have (the envelope itself takes six levels down to a part's data).
 * Deeper bodies overflowed the stack in the SDK's recursive converters and came back as a bare `-32603`
 * "Maximum call stack size exceeded"; now they are a typed refusal before any of it runs.
 */
export const MAX_REQUEST_DEPTH = 64;

/** True when `value` (parsed JSON) nests at most `max` arrays/objects deep; iterative, so any depth is safe. */
export function withinDepth(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return false;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
  return true;
}

export type A2aListen = OnionTargetListen;

export interface A2aServerOptions {
  /** The signed card to serve (rebuilt when the advertisement changes). */
  card: () => Promise<AgentCard>;
  journal: A2aJournal;
  /** Hands an inbound task to the agent program; false when nobody listens. */
  deliver(task: A2aTask): boolean;
  listen: A2aListen;
  /** This server's host name (`<onion>`): sender proofs must be addressed to it. */
  host: string;
  limits?: A2aLimits;
}

export interface A2aServer {
  /** What tor's ADD_ONION `Port=80,<target>` should name: `unix:/path` or `127.0.0.1:port`. */
  readonly onionTarget: string;
  close(): Promise<void>;
}

/** A JSON-RPC error response (JSON-RPC 2.0 §5.1) for refusals made before the A2A handler runs. */
function rpcError(
  res: Response,
  http: number,
  code: number,
  message: string,
  data?: Record<string, unknown>,
  id: unknown = null,
) {
  if (res.headersSent) return;
  // JSON-RPC 2.0 §5: the request's id when it is a usable one, else null.
  const replyId = typeof id === 'string' || typeof id === 'number' ? id : null;
  res.status(http).json({ jsonrpc: '2.0', id: replyId, error: { code, message, ...(data ? { data } : {}) } });
}

export async function startA2aServer(options: A2aServerOptions): Promise<A2aServer> {
  const limits = { ...DEFAULT_A2A_LIMITS, ...options.limits };
  const taskStore = new BoundedTaskStore(limits.maxStoredTasks);
  let running = 0;
  const executor = createExecutor({
    journal: options.journal,
    taskStore,
    proofs: new ProofChecker(options.host),
    deliver: options.deliver,
    answerWaitMs: limits.answerWaitMs,
  });
  // The handler only reads its card for the interfaces (version checks), which do not change; the card
  // endpoint asks `options.card` each time, so skills follow the latest advertisement.
  const handler = new DefaultRequestHandler(await options.card(), taskStore, executor);

  const windows = new WeakMap<Socket, { start: number; count: number }>();
  const exchangeTimeoutMs = limits.exchangeTimeoutMs ?? limits.requestTimeoutMs + limits.answerWaitMs;
  routeSdkConsole();
  const app = express();
  app.disable('x-powered-by');
  app.use((req: Request, res: Response, next: NextFunction) => {
    // The whole exchange has a deadline, the response included (see `exchangeTimeoutMs`).
    const deadline = setTimeout(() => {
      log('exchange deadline passed (%d ms): connection cut', exchangeTimeoutMs);
      req.socket.destroy();
    }, exchangeTimeoutMs);
    deadline.unref();
    res.once('close', () => clearTimeout(deadline));
    next();
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    // A fixed one-second window per connection (tor opens one connection per client stream).
    const now = Date.now();
    let w = windows.get(req.socket);
    if (!w || now - w.start >= 1_000) {
      w = { start: now, count: 0 };
      windows.set(req.socket, w);
    }
    if (++w.count > limits.perConnectionPerSecond) {
      res.setHeader('Connection', 'close');
      return rpcError(res, 429, -32000, 'rate limited: too many requests on this connection', {
        code: 'ERR_RATE_LIMITED',
      });
    }
    next();
  });
  app.use(
    `/${AGENT_CARD_PATH}`,
    agentCardHandler({ agentCardProvider: options.card, cache: { maxAge: 300 } }),
  );
  app.use(
    A2A_JSONRPC_PATH,
    express.json({ limit: limits.maxBodyBytes, type: () => true }),
    (err: unknown, _req: Request, res: Response, next: NextFunction) => {
      const e = err as { type?: string; status?: number };
      if (e?.type === 'entity.too.large') {
        return rpcError(res, 413, -32600, `request body larger than ${limits.maxBodyBytes} bytes`, {
          code: 'ERR_TOO_LARGE',
        });
      }
      if (e?.status === 400) return rpcError(res, 400, -32700, 'request body is not JSON');
      next(err);
    },
    (req: Request, res: Response, next: NextFunction) => {
      if (!withinDepth(req.body, MAX_REQUEST_DEPTH)) {
        // JSON-RPC 2.0 §5.1: the body is JSON but not an acceptable Request object.
        return rpcError(res, 400, -32600, `request JSON nested deeper than ${MAX_REQUEST_DEPTH} levels`, {
          code: 'ERR_TOO_LARGE',
        });
      }
      next();
    },
    (req: Request, res: Response, next: NextFunction) => {
      const method = (req.body as { method?: unknown } | undefined)?.method;
      if (method === 'ListTasks') {
        // Callers are unauthenticated (an onion service learns nothing about who calls), so a list would hand
        // every caller the ids, messages and answers of everyone else's tasks, and with the ids the power to
        // cancel them or write into them. A task stays readable by whoever holds its id (GetTask).
        return rpcError(
          res,
          200,
          -32004, // A2A UnsupportedOperationError
          'ListTasks is not offered: callers are not authenticated; use GetTask with a task id',
          { code: 'ERR_PEER_UNSUPPORTED' },
          (req.body as { id?: unknown }).id,
        );
      }
      if (method === 'SendMessage' || method === 'SendStreamingMessage') {
        if (running >= limits.maxConcurrentTasks) {
          return rpcError(res, 503, -32000, 'too many tasks in progress; try again later', {
            code: 'ERR_RATE_LIMITED',
          });
        }
        running++;
        res.once('close', () => running--);
      }
      // Entered here, after the body was read: stream callbacks do not carry an async context over.
      inSdkScope(next);
    },
    jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }),
  );
  app.use((_req: Request, res: Response) => rpcError(res, 404, -32601, 'not found'));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    log('request failed: %s', err instanceof Error ? err.message : String(err));
    rpcError(res, 500, -32603, 'internal error');
  });

  const server: Server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks those deadlines on this interval (default 30 s): check often enough to honour them.
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    app,
  );
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 64;
  server.on('clientError', (_e, socket) => socket.destroy());
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const listen = options.listen;
  const onionTarget = await listenOnionTarget(server, listen);
  log('A2A server on %s', onionTarget);
  return {
    onionTarget,
    async close() {
      for (const s of sockets) s.destroy();
      await closeOnionTarget(server, listen);
    },
  };
}
