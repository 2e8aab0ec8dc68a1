/**
 * The daemon's messaging methods over IPC (docs/protocol.md §7): send, inbox, follow (a stream of messages as
 * progress lines) and connect. Each validates its untrusted parameters before it reaches the agent.
 * @module
 */
import { isAbsolute } from 'node:path';
import { MmogitError } from '../errors.js';
import type { Agent } from './agent.js';
import type { IpcHandler } from './ipc.js';
import { IPC_MAX_STRING, type IpcParams, optionalIntParam, stringParam } from './ipc-params.js';
import { isJsonValue, MESSAGE_ID_RE } from './messaging-envelope-v2.js';
import type { InboxFilter, MessageInput, ReceivedMessage } from './messaging-types.js';
import type { AgentRuntime } from './runtime-types.js';

/** The longest a `send` may ask to wait for the first attempt (the CLI's own timeout is above it). */
const MAX_SEND_TIMEOUT_MS = 120_000;

function bad(field: string, why: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', `IPC parameter "${field}" ${why}`, {
    details: { param: field },
  });
}

/** An optional non-empty string of at most `max` characters (absent or `null`: undefined). */
function optString(p: IpcParams, field: string, max?: number): string | undefined {
  return p[field] === undefined || p[field] === null ? undefined : stringParam(p, field, max);
}

/** The message to send, from `text` or the structured fields (checked again, fully, when it is signed). */
export function messageParams(p: IpcParams): string | MessageInput {
  const type = optString(p, 'type', 64);
  const thread = optString(p, 'thread', 32);
  const replyTo = optString(p, 'replyTo', 32);
  const text = p.text === undefined ? undefined : p.text;
  if (text !== undefined && typeof text !== 'string') throw bad('text', 'must be a string');
  if (typeof text === 'string' && text.length > IPC_MAX_STRING)
    throw bad('text', `is over ${IPC_MAX_STRING} characters`);
  let meta: Record<string, string> | undefined;
  if (p.meta !== undefined) {
    if (typeof p.meta !== 'object' || p.meta === null || Array.isArray(p.meta))
      throw bad('meta', 'must be an object');
    meta = {};
    for (const [k, v] of Object.entries(p.meta)) {
      if (typeof v !== 'string') throw bad('meta', `value of "${k.slice(0, 64)}" must be a string`);
      meta[k] = v;
    }
  }
  const hasBody = Object.hasOwn(p, 'body');
  if (hasBody && !isJsonValue(p.body)) throw bad('body', 'must be a JSON value');
  const body = hasBody && isJsonValue(p.body) ? p.body : undefined;
  if (!hasBody && text === undefined) throw bad('text', 'is missing (give a text or a body)');
  if (type === undefined && thread === undefined && replyTo === undefined && meta === undefined && !hasBody) {
    return text ?? '';
  }
  return {
    ...(type !== undefined ? { type } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(body !== undefined ? { body } : {}),
    ...(thread !== undefined ? { thread } : {}),
    ...(replyTo !== undefined ? { replyTo } : {}),
    ...(meta !== undefined ? { meta } : {}),
  };
}

/**
 * The inbox filters (`from` may be an onion or an alias; `since` a cursor): `limit` keeps the newest that many,
 * `first` the oldest that many after `since` (a page; pass its last cursor as the next `since`), not both.
 */
export function filterParams(p: IpcParams): InboxFilter {
  const from = optString(p, 'from', 128);
  const type = optString(p, 'type', 64);
  const thread = optString(p, 'thread', 32);
  const since = optString(p, 'since', 128);
  const limit = optionalIntParam(p, 'limit', { min: 1, max: 1_000_000 });
  const first = optionalIntParam(p, 'first', { min: 1, max: 1_000_000 });
  if (limit !== undefined && first !== undefined) throw bad('first', 'cannot be given with "limit"');
  return {
    ...(from !== undefined ? { from } : {}),
    ...(type !== undefined ? { type } : {}),
    ...(thread !== undefined ? { thread } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(first !== undefined ? { first } : {}),
  };
}

/** One followed message as a progress line: `{"message": …}` (the CLI prints it as one NDJSON line). */
export interface FollowProgress {
  message: ReceivedMessage;
}

/**
 * The messaging methods of the daemon serving `agent`. `net` returns its runtime (or throws
 * `ERR_DAEMON_NOT_RUNNING` while it starts).
 */
export function messagingHandlers(agent: Agent, net: () => AgentRuntime): Record<string, IpcHandler> {
  return {
    send: async (p, ctx) => {
      const peer = stringParam(p, 'onion', 128);
      const timeoutMs = optionalIntParam(p, 'timeoutMs', { min: 1, max: MAX_SEND_TIMEOUT_MS });
      return net().send(peer, messageParams(p), {
        signal: ctx.signal,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
    },
    /**
     * `{onion, path, maxFileBytes?, background?}`: the daemon opens `path` itself (an absolute path; the socket
     * is the user's own, mode 0600), so no file content ever travels through IPC. Progress lines:
     * `{phase:"file",…}`. `background`: answer `queued` once the offer is in the file outbox.
     */
    sendFile: async (p, ctx) => {
      const path = stringParam(p, 'path', 4096);
      if (!isAbsolute(path)) throw bad('path', 'must be an absolute path');
      const maxFileBytes = optionalIntParam(p, 'maxFileBytes', { min: 0, max: Number.MAX_SAFE_INTEGER });
      const { ack: _ack, ...result } = await net().sendFile(stringParam(p, 'onion', 128), path, {
        signal: ctx.signal,
        ...(maxFileBytes !== undefined ? { maxFileBytes } : {}),
        background: p.background === true,
        onProgress: (e) => ctx.progress({ ...e, stage: e.phase, phase: 'file' }),
      });
      return result;
    },
    inbox: async (p) => net().inbox(filterParams(p)),
    /**
     * Streams every message after `since`, then new ones, until the client disconnects or the agent stops. The
     * backlog is read a page at a time (messaging-follow.ts), and the next message is taken only once the
     * socket has room for it: a client that reads slowly holds the daemon to its pace, not to a buffer of the
     * whole backlog.
     */
    follow: async (p, ctx) => {
      const { limit: _limit, first: _first, ...filter } = filterParams(p);
      let cursor = filter.since ?? null;
      for await (const message of net().messages({ ...filter, signal: ctx.signal })) {
        if (!ctx.progress({ message } satisfies FollowProgress)) await ctx.drain();
        cursor = message.cursor ?? cursor;
      }
      return { cursor, ended: agent.running ? 'client' : 'agent stopped' };
    },
    /** `{action: "list"|"add"|"remove", alias?, onion?, replace?}` → every contact after the action. */
    contacts: async (p) => {
      const action = optString(p, 'action', 16) ?? 'list';
      if (action === 'add') {
        await agent.contacts.add(stringParam(p, 'alias', 64), stringParam(p, 'onion', 128), {
          replace: p.replace === true,
        });
      } else if (action === 'remove') {
        await agent.contacts.remove(stringParam(p, 'alias', 64));
      } else if (action !== 'list') {
        throw bad('action', 'must be list, add or remove');
      }
      return agent.contacts.list();
    },
    /** `{action: "list"|"retry"|"drop", id?}`: the queued messages, or one retried now / given up. */
    outbox: async (p, ctx) => {
      const action = optString(p, 'action', 16) ?? 'list';
      if (action === 'list') return net().outbox();
      const id = stringParam(p, 'id', 32);
      if (!MESSAGE_ID_RE.test(id)) throw bad('id', 'must be a message id (32 hex characters)');
      if (action === 'retry') return net().retryQueued(id, { signal: ctx.signal });
      if (action === 'drop') return net().dropQueued(id);
      throw bad('action', 'must be list, retry or drop');
    },
    /** `{onion, count?, fresh?}`: `count` pings over one session. */
    pingPeer: async (p, ctx) =>
      net().ping(stringParam(p, 'onion', 128), {
        signal: ctx.signal,
        count: optionalIntParam(p, 'count', { min: 1, max: 100 }) ?? 1,
        fresh: p.fresh === true,
      }),
    connect: async (p, ctx) =>
      net().connect(stringParam(p, 'onion', 128), { signal: ctx.signal, fresh: p.fresh === true }),
  };
}
