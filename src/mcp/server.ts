/**
 * The agent as an MCP server (Model Context Protocol, revision 2025-06-18 as implemented by the official
 * TypeScript SDK v1): the tools of tools.ts, and the inbox as a subscribable resource (`mmogit://inbox`,
 * `resources/subscribe` → `notifications/resources/updated` when a message arrives).
 *
 * Built on the SDK's low-level `Server` rather than `McpServer`: `McpServer` validates arguments itself and
 * reports a violation as a bare text error, while MCP hosts should see our stable error code on every failure
 * (`structuredContent.error.code`, and `[ERR_…]` in the text), the same codes the CLI and SDK use.
 * @module
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import type { AgentLink } from './daemon-link.js';
import { type InboxMessage, watchInbox } from './inbox.js';
import { TOOLS, type ToolDef } from './tools.js';

const log = createLogger('mmogit:mcp');

/** The inbox resource's URI. */
export const INBOX_RESOURCE_URI = 'mmogit://inbox';
/** How many of the newest messages the inbox resource shows. */
export const INBOX_RESOURCE_LIMIT = 100;

export const SERVER_NAME = 'mmogit';

export interface McpServerOptions {
  link: AgentLink;
  version: string;
}

/**
 * Tool calls one session runs at once. Each holds a connection to the daemon (a `read_inbox` wait up to 300 s),
 * and the daemon serves at most 64 (src/agent/ipc.ts): a host that fired 64 waits at once, say a model following
 * a peer's message that told it to, locked the CLI and every other host out of the agent until they ended.
 */
export const MAX_TOOL_CALLS_IN_FLIGHT = 16;

/** A tool failure as an MCP tool result: the model sees the message, the host the code. */
export function toolError(e: unknown): CallToolResult {
  const typed =
    e instanceof MmogitError
      ? e
      : new MmogitError('ERR_INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
  const error = {
    code: typed.code,
    message: typed.message,
    ...(typed.details ? { details: typed.details } : {}),
  };
  return {
    isError: true,
    content: [{ type: 'text', text: `${typed.message} [${typed.code}]` }],
    structuredContent: { error },
  };
}

/** A zod failure as our usage error, naming each bad field. */
function invalidArguments(tool: string, error: z.ZodError): MmogitError {
  const problems = error.issues.map((i) => ({
    field: i.path.join('.') || '(arguments)',
    problem: i.message,
  }));
  return new MmogitError(
    'ERR_INVALID_ARGUMENT',
    `invalid arguments for ${tool}: ${problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}`,
    { details: { tool, problems } },
  );
}

/**
 * The schema a handler is registered with: the method only. The SDK validates a request against the registered
 * schema before anything else and answers a mismatch `-32603 Internal error`, with the validator's whole report
 * as the message; a request whose params are wrong is the caller's error, `-32602 Invalid params` (JSON-RPC 2.0
 * §5.1), so each handler checks the real schema itself ({@link checked}). (For `tools/call` the SDK's own
 * wrapper then checks first, already as `-32602`.)
 */
function methodOnly<M extends string>(method: M) {
  return z.object({ method: z.literal(method) }).loose();
}

/** `request` parsed by the SDK's schema of its method, or `-32602` naming the first bad fields. */
function checked<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: z.ZodError } },
  request: unknown,
): T {
  const r = schema.safeParse(request);
  if (r.success) return r.data;
  const method = String((request as { method?: unknown }).method).slice(0, 64);
  const problems = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`)
    .join('; ');
  throw new McpError(ErrorCode.InvalidParams, `invalid params for ${method}: ${problems}`, {
    code: 'ERR_INVALID_ARGUMENT',
  });
}

/** A URI as quoted in an error: cut, since a host may send megabytes of it. */
const quoteUri = (uri: string) => JSON.stringify(uri.length > 200 ? `${uri.slice(0, 200)}…` : uri);

/** JSON Schema of a tool's input, as `tools/list` shows it (defaults make a field optional for the caller). */
function inputJsonSchema(def: ToolDef): { type: 'object'; [k: string]: unknown } {
  const { $schema: _drop, ...schema } = z.toJSONSchema(def.input, { io: 'input' }) as Record<string, unknown>;
  return { ...schema, type: 'object' };
}

function inboxText(messages: InboxMessage[]): string {
  return JSON.stringify({ messages: messages.slice(-INBOX_RESOURCE_LIMIT) });
}

/**
 * Creates the MCP server for one agent. Connect it to a transport (`server.connect(new LineTransport(stdin,
 * stdout, options))`, stdio-transport.ts); `close()` stops the subscription watcher too.
 */
export function createMcpServer(options: McpServerOptions): Server {
  const { link } = options;
  const server = new Server(
    { name: SERVER_NAME, title: 'mmogit agent', version: options.version },
    {
      capabilities: { tools: {}, resources: { subscribe: true } },
      instructions:
        'Tools of one mmogit agent: a peer-to-peer agent over Tor onion services. Its messages are signed ' +
        'and end-to-end encrypted; every message and memory you read says whether its signature verified. ' +
        'Use whoami first; read_inbox with wait_seconds (or subscribe to mmogit://inbox) to wait for replies.',
    },
  );
  const byName = new Map(TOOLS.map((t) => [t.name, t]));
  let inFlight = 0;
  const closing = new AbortController();

  server.setRequestHandler(methodOnly('tools/list'), (request) => {
    checked(ListToolsRequestSchema, request);
    return listTools();
  });
  const listTools = () => ({
    tools: TOOLS.map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: inputJsonSchema(t),
      annotations: { title: t.title, ...t.hints },
    })),
  });

  server.setRequestHandler(methodOnly('tools/call'), async (raw, extra) => {
    const request = checked(CallToolRequestSchema, raw);
    const def = byName.get(request.params.name);
    if (!def) {
      // An unknown tool is a protocol error (MCP spec, tools: "Error Handling"), with our code in `data`.
      // The name is cut: a host may send megabytes of it, and the answer need not echo them.
      const name = request.params.name;
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${JSON.stringify(name.slice(0, 64))}`, {
        code: 'ERR_INVALID_ARGUMENT',
        tools: TOOLS.map((t) => t.name),
      });
    }
    const parsed = def.input.safeParse(request.params.arguments ?? {});
    if (!parsed.success) return toolError(invalidArguments(def.name, parsed.error));
    if (inFlight >= MAX_TOOL_CALLS_IN_FLIGHT) {
      return toolError(
        new MmogitError(
          'ERR_RATE_LIMITED',
          `${MAX_TOOL_CALLS_IN_FLIGHT} tool calls are already running; wait for one to finish`,
          { details: { inFlight } },
        ),
      );
    }
    inFlight++;
    const signal = AbortSignal.any([extra.signal, closing.signal]);
    try {
      const result = await def.run(parsed.data, { link, signal });
      return {
        content: [{ type: 'text', text: JSON.stringify(result) }],
        structuredContent: result,
      };
    } catch (e) {
      log('tool %s failed: %s', def.name, e instanceof Error ? e.message : String(e));
      return toolError(e);
    } finally {
      inFlight--;
    }
  });

  // ── the inbox resource and its subscription ──────────────────────────────────────────────────────

  server.setRequestHandler(methodOnly('resources/list'), (request) => {
    checked(ListResourcesRequestSchema, request);
    return listResources();
  });
  const listResources = () => ({
    resources: [
      {
        uri: INBOX_RESOURCE_URI,
        name: 'inbox',
        title: 'Received messages',
        description: `The newest ${INBOX_RESOURCE_LIMIT} received messages (verified flag on each); subscribe to hear of new ones.`,
        mimeType: 'application/json',
      },
    ],
  });

  server.setRequestHandler(methodOnly('resources/read'), async (raw, extra) => {
    const request = checked(ReadResourceRequestSchema, raw);
    if (request.params.uri !== INBOX_RESOURCE_URI) {
      throw new McpError(-32002, `unknown resource ${quoteUri(request.params.uri)}`, {
        code: 'ERR_NOT_FOUND',
      });
    }
    let messages: InboxMessage[];
    try {
      messages = await link.call<InboxMessage[]>(
        'inbox',
        { limit: INBOX_RESOURCE_LIMIT },
        { signal: extra.signal },
      );
    } catch (e) {
      const typed = e instanceof MmogitError ? e : new MmogitError('ERR_INTERNAL', String(e));
      throw new McpError(ErrorCode.InternalError, `${typed.message} [${typed.code}]`, { code: typed.code });
    }
    return {
      contents: [{ uri: INBOX_RESOURCE_URI, mimeType: 'application/json', text: inboxText(messages) }],
    };
  });

  // While a host subscribes, one `follow` stream from the daemon turns each received message into a
  // `notifications/resources/updated`; nothing runs while nobody subscribes.
  const subscribed = new Set<string>();
  let watching: AbortController | null = null;
  let ready: Promise<void> = Promise.resolve();
  const startWatching = (): Promise<void> => {
    if (watching) return ready;
    const ctl = new AbortController();
    watching = ctl;
    let onReady!: () => void;
    ready = new Promise<void>((r) => {
      onReady = r;
    });
    void watchInbox(
      link,
      () => {
        if (subscribed.has(INBOX_RESOURCE_URI)) {
          server.sendResourceUpdated({ uri: INBOX_RESOURCE_URI }).catch(() => {});
        }
      },
      AbortSignal.any([ctl.signal, closing.signal]),
      (e) => log('inbox watch: %s', e instanceof Error ? e.message : String(e)),
      onReady,
    );
    return ready;
  };
  const stopWatching = () => {
    watching?.abort();
    watching = null;
  };

  server.setRequestHandler(methodOnly('resources/subscribe'), async (raw) => {
    const request = checked(SubscribeRequestSchema, raw);
    if (request.params.uri !== INBOX_RESOURCE_URI) {
      throw new McpError(-32002, `unknown resource ${quoteUri(request.params.uri)}`, {
        code: 'ERR_NOT_FOUND',
      });
    }
    subscribed.add(request.params.uri);
    // Answer once the watch knows where "now" is, so any message after the subscription notifies.
    await startWatching();
    return {};
  });

  server.setRequestHandler(methodOnly('resources/unsubscribe'), async (raw) => {
    const request = checked(UnsubscribeRequestSchema, raw);
    subscribed.delete(request.params.uri);
    if (subscribed.size === 0) stopWatching();
    return {};
  });

  server.onclose = () => {
    closing.abort(new MmogitError('ERR_ABORTED', 'MCP session closed'));
    stopWatching();
  };
  return server;
}
