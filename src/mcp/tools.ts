/**
 * The agent's MCP tools: each a name, a one-line description an LLM can act on, a zod input schema (listed as
 * JSON Schema in `tools/list`) and a handler that asks the daemon or the memory repository. Handlers throw
 * {@link MmogitError}s; the server turns them into MCP tool errors carrying the code (server.ts).
 *
 * Argument names are snake_case, as MCP hosts and their models expect; results are the daemon's JSON.
 * @module
 */
import { z } from 'zod';
import { ALIAS_RE } from '../agent/contacts.js';
import { isJsonValue, MAX_BODY_DEPTH } from '../agent/messaging-envelope-v2.js';
import { MmogitError } from '../errors.js';
import { parseOnionAddress } from '../identity/onion.js';
import { MEMORY_TYPES } from '../memory/entry.js';
import type { VerifiedEntry } from '../memory/store.js';
import { type AgentLink, unsupported } from './daemon-link.js';
import { MAX_WAIT_SECONDS, readInbox, waitInbox } from './inbox.js';

/** What a handler gets besides its arguments. */
export interface ToolContext {
  link: AgentLink;
  /** Fires when the host cancels the call or the server closes. */
  signal: AbortSignal;
}

/** MCP tool annotations (hints for hosts: which tools only read, which reach the network). */
export interface ToolHints {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolDef<S extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: S;
  hints: ToolHints;
  run(args: z.output<S>, ctx: ToolContext): Promise<Record<string, unknown>>;
}

function tool<S extends z.ZodObject>(def: ToolDef<S>): ToolDef {
  return def as unknown as ToolDef;
}

// ── shared schema pieces ────────────────────────────────────────────────────────────────────────────

const onion = z
  .string()
  .min(16)
  .max(80)
  .describe('a peer’s v3 onion address: 56 base32 characters, optionally ending in .onion');
const peer = z
  .string()
  .min(1)
  .max(128)
  .describe('the peer: its onion address, or the alias of one of your contacts');
const service = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, _ . - (at most 64)')
  .describe('a service name, e.g. memory_sync or messaging');
/** Message types of structured messages (an open set: `custom` or any lower-case word). */
const messageType = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/)
  .describe('message type: message, task-proposal, task-result, capability-query, status-update or custom');
const messageId = z.string().min(1).max(128);
const seconds = (max: number) => z.number().positive().max(max);

/**
 * A peer argument: an onion (checked and normalised) or something shaped like a contact alias (the daemon
 * resolves it). Anything else fails here, before the daemon is asked.
 */
function checkPeer(value: string): string {
  const s = value.trim();
  if (s.toLowerCase().endsWith('.onion') || /^[a-z2-7]{56}$/i.test(s)) return parseOnionAddress(s).hostname;
  if (ALIAS_RE.test(s)) return s;
  throw new MmogitError(
    'ERR_INVALID_ONION',
    `"${s.slice(0, 80)}" is neither an onion address nor a contact alias`,
    {
      details: { peer: s.slice(0, 80) },
    },
  );
}

/** Arguments that must be an onion (no alias), normalised. */
function peerOnion(value: string): string {
  return parseOnionAddress(value).hostname;
}

function withTimeoutMs(timeoutSeconds: number | undefined, fallbackMs: number): number {
  return timeoutSeconds !== undefined ? Math.round(timeoutSeconds * 1000) : fallbackMs;
}

function entryView(v: VerifiedEntry): Record<string, unknown> {
  return {
    id: v.id,
    kind: v.kind,
    author: v.author,
    createdAt: v.createdAt,
    visibility: v.visibility,
    verified: v.verified,
    ...(v.problem ? { problem: v.problem } : {}),
    ...(v.sharedWith ? { sharedWith: v.sharedWith } : {}),
    ...(v.entry ? v.entry.body : {}),
  };
}

// ── the tools ───────────────────────────────────────────────────────────────────────────────────────

export const TOOLS: readonly ToolDef[] = [
  tool({
    name: 'whoami',
    title: 'Who am I',
    description:
      'Show this agent’s own onion address and public key, and whether its daemon is running (peers, outbox).',
    input: z.object({}),
    hints: { readOnlyHint: true, openWorldHint: false },
    async run(_args, { link, signal }) {
      const id = await link.identity();
      let daemon: Record<string, unknown>;
      try {
        const s = await link.call<Record<string, unknown>>('status', {}, { signal, timeoutMs: 5_000 });
        daemon = {
          running: true,
          ready: s.ready,
          policy: s.policy,
          peers: Array.isArray(s.peers) ? s.peers.length : 0,
          outbox: s.outbox,
        };
      } catch (e) {
        if (!(e instanceof MmogitError && e.code === 'ERR_DAEMON_NOT_RUNNING')) throw e;
        daemon = { running: false };
      }
      return { onion: id.onion, pubkey: id.pubkey, daemon };
    },
  }),

  tool({
    name: 'send_message',
    title: 'Send a message',
    description:
      'Send a signed, end-to-end encrypted message to a peer over Tor; returns delivered, or queued and retried while the peer is offline.',
    input: z
      .object({
        peer,
        text: z.string().min(1).max(65_536).optional().describe('the message text'),
        type: messageType.optional(),
        thread: messageId.optional().describe('thread id to group the message with others'),
        reply_to: messageId.optional().describe('id of the message this one answers'),
        // Checked here (iteratively) as the daemon checks it: a body nested thousands deep overflowed the stack
        // while the request to the daemon was encoded, an ERR_INTERNAL instead of a usage error.
        body: z
          .unknown()
          .refine(
            (v) => v === undefined || isJsonValue(v),
            `must be JSON nested at most ${MAX_BODY_DEPTH} deep`,
          )
          .optional()
          .describe('structured JSON payload (any JSON value)'),
        meta: z.record(z.string(), z.string()).optional().describe('small string key/value metadata'),
      })
      .refine((a) => a.text !== undefined || a.body !== undefined, {
        message: 'give text, body or both',
        path: ['text'],
      }),
    hints: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    async run(args, { link, signal }) {
      // The daemon resolves a contact alias, validates every field again and signs them all (format v2).
      return link.call<Record<string, unknown>>(
        'send',
        {
          onion: checkPeer(args.peer),
          ...(args.text !== undefined ? { text: args.text } : {}),
          ...(args.type !== undefined ? { type: args.type } : {}),
          ...(args.thread !== undefined ? { thread: args.thread } : {}),
          ...(args.reply_to !== undefined ? { replyTo: args.reply_to } : {}),
          ...(args.body !== undefined ? { body: args.body } : {}),
          ...(args.meta !== undefined ? { meta: args.meta } : {}),
        },
        { signal, timeoutMs: 130_000 },
      );
    },
  }),

  tool({
    name: 'read_inbox',
    title: 'Read the inbox',
    description:
      'Read received messages (verified, oldest first); pass next_cursor back as cursor for only newer ones, and wait_seconds to wait for one.',
    input: z.object({
      from: peer.optional().describe('only messages from this peer (onion or contact alias)'),
      type: messageType.optional().describe('only messages of this type'),
      thread: messageId.optional().describe('only messages of this thread'),
      since: z
        .string()
        .max(64)
        .refine((v) => Number.isFinite(Date.parse(v)), 'not an ISO 8601 date-time')
        .optional()
        .describe('only messages sent at or after this ISO 8601 time'),
      cursor: z.string().max(512).optional().describe('next_cursor of a previous read_inbox'),
      limit: z.number().int().min(1).max(500).default(50),
      wait_seconds: z
        .number()
        .min(0)
        .max(MAX_WAIT_SECONDS)
        .default(0)
        .describe('when nothing matches yet, wait up to this long for a message'),
    }),
    hints: { readOnlyHint: true, openWorldHint: false },
    async run(args, { link, signal }) {
      const filter = {
        from: args.from !== undefined ? checkPeer(args.from) : undefined,
        type: args.type,
        thread: args.thread,
        sinceTime: args.since !== undefined ? Date.parse(args.since) : undefined,
        cursor: args.cursor,
        limit: args.limit,
      };
      const page =
        args.wait_seconds > 0
          ? await waitInbox(link, filter, args.wait_seconds, signal)
          : await readInbox(link, filter, signal);
      return { ...page };
    },
  }),

  tool({
    name: 'discover_agents',
    title: 'Discover agents',
    description:
      'Find agents offering a service through the DHT over Tor; every result is a verified, signed advertisement.',
    input: z.object({
      service,
      limit: z.number().int().min(1).max(100).default(20),
      timeout_seconds: seconds(120).default(30),
    }),
    hints: { readOnlyHint: true, openWorldHint: true },
    async run(args, { link, signal }) {
      const timeoutMs = withTimeoutMs(args.timeout_seconds, 30_000);
      const agents = await link.call<unknown[]>(
        'discover',
        { service: args.service, limit: args.limit, timeoutMs },
        { signal, timeoutMs: timeoutMs + 60_000 },
      );
      return { agents };
    },
  }),

  tool({
    name: 'advertise',
    title: 'Advertise services',
    description:
      'Publish this agent’s signed advertisement for the given services in the DHT, so discover_agents finds it.',
    input: z.object({
      services: z.array(service).min(1).max(16),
      ttl_seconds: seconds(7 * 86_400)
        .default(6 * 3_600)
        .describe('how long the advertisement is valid'),
    }),
    hints: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, { link, signal }) {
      const advert = await link.call<Record<string, unknown>>(
        'advertise',
        { services: args.services, ttlMs: Math.round(args.ttl_seconds * 1000) },
        { signal, timeoutMs: 180_000 },
      );
      return { advert };
    },
  }),

  tool({
    name: 'ping_peer',
    title: 'Ping a peer',
    description:
      'Reach a peer over Tor: its verified identity, the transport, the post-quantum suite and the round-trip time.',
    input: z.object({ peer }),
    hints: { readOnlyHint: true, openWorldHint: true },
    async run(args, { link, signal }) {
      return link.call<Record<string, unknown>>(
        'connect',
        { onion: checkPeer(args.peer) },
        { signal, timeoutMs: 120_000 },
      );
    },
  }),

  tool({
    name: 'remember',
    title: 'Remember',
    description:
      'Store a signed memory in this agent’s git-backed memory (shared with peers on sync unless private).',
    input: z.object({
      type: z.enum(MEMORY_TYPES),
      content: z.string().min(1).max(32_768),
      tags: z.array(z.string().min(1).max(64)).max(64).optional(),
      confidence: z.number().min(0).max(1).optional(),
      references: z.array(z.string().min(1).max(256)).max(256).optional(),
      private: z.boolean().optional().describe('keep it out of sync (default false)'),
    }),
    hints: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, { link }) {
      const entry = await link.withMemory((store) =>
        store.remember({
          type: args.type,
          content: args.content,
          ...(args.tags ? { tags: args.tags } : {}),
          ...(args.references ? { references: args.references } : {}),
          ...(args.confidence !== undefined ? { confidence: args.confidence } : {}),
          visibility: args.private ? 'private' : 'public',
        }),
      );
      return { entry };
    },
  }),

  tool({
    name: 'recall',
    title: 'Recall',
    description:
      'List memories (this agent’s and those synced from peers), newest first, each with its author and verified flag.',
    input: z.object({
      type: z.enum(MEMORY_TYPES).optional(),
      tag: z.string().min(1).max(64).optional(),
      author: onion.optional().describe('only memories by this agent'),
      hours: z.number().positive().max(1e6).optional().describe('only the last N hours'),
      limit: z.number().int().min(1).max(500).default(50),
    }),
    hints: { readOnlyHint: true, openWorldHint: false },
    async run(args, { link }) {
      const entries = await link.withMemory((store) =>
        store.recall({
          kind: 'memory',
          ...(args.type ? { type: args.type } : {}),
          ...(args.tag ? { tag: args.tag } : {}),
          ...(args.author ? { author: peerOnion(args.author) } : {}),
          ...(args.hours ? { sinceHours: args.hours } : {}),
          limit: args.limit,
        }),
      );
      return { memories: entries.map(entryView) };
    },
  }),

  tool({
    name: 'sync_memory',
    title: 'Sync memory',
    description:
      'Sync memory with peers in both directions over the post-quantum channel (default: configured peers, else agents offering memory_sync).',
    input: z.object({
      peers: z.array(onion).max(32).optional(),
      timeout_seconds: seconds(600).default(120),
    }),
    hints: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, { link, signal }) {
      const timeoutMs = withTimeoutMs(args.timeout_seconds, 120_000);
      const results = await link.call<unknown[]>(
        'sync',
        { peers: (args.peers ?? []).map(peerOnion), timeoutMs },
        { signal, timeoutMs: timeoutMs + 30_000 },
      );
      return { results };
    },
  }),

  tool({
    name: 'contacts',
    title: 'Contacts',
    description:
      'List, add or remove contacts: aliases for peer onions that send_message and read_inbox accept.',
    input: z.object({
      action: z.enum(['list', 'add', 'remove']).default('list'),
      // The contact book's own rule (contacts.ts ALIAS_RE): an alias is lower case, so `Bob` fails here.
      alias: z
        .string()
        .regex(ALIAS_RE, 'lower-case letters, digits, . _ - (at most 64, starting with a letter or digit)')
        .optional()
        .describe('the contact’s name (for add and remove): lower-case letters, digits, . _ -'),
      onion: onion.optional().describe('the contact’s onion (for add)'),
      replace: z.boolean().optional().describe('add: replace an alias that names another onion'),
    }),
    hints: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    async run(args, { link, signal }) {
      const contacts = await link
        .call<unknown>(
          'contacts',
          {
            action: args.action,
            ...(args.alias ? { alias: args.alias } : {}),
            ...(args.onion ? { onion: peerOnion(args.onion) } : {}),
            ...(args.replace ? { replace: true } : {}),
          },
          { signal },
        )
        .catch((e) => unsupported(e, 'contacts'));
      return { contacts };
    },
  }),
];
