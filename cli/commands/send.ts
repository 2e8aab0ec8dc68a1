import { callDaemon } from '../../src/agent/daemon.js';
import { FILE_MESSAGE_TYPE } from '../../src/agent/files-wire.js';
import {
  MAX_META_ENTRIES,
  MESSAGE_ID_RE,
  MESSAGE_TYPE_RE,
  META_KEY_RE,
} from '../../src/agent/messaging-envelope-v2.js';
import { MmogitError } from '../../src/errors.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeer } from './_peers.js';

/** `--stdin` reads at most this much: well above any message cap, so a bigger input is refused unread. */
const MAX_STDIN_BYTES = 1024 * 1024;

interface SendArgs extends GlobalOptions {
  peer: string;
  text?: string;
  stdin?: boolean;
  jsonBody?: boolean;
  type?: string;
  thread?: string;
  replyTo?: string;
  meta?: string[];
  file?: string;
  maxFileBytes?: string;
  background?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > MAX_STDIN_BYTES) {
      throw new MmogitError('ERR_TOO_LARGE', `stdin holds more than ${MAX_STDIN_BYTES} bytes`, {
        details: { limit: MAX_STDIN_BYTES },
      });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `k=v` pairs as an object; a pair without `=` or a repeated key is a usage error. */
function parseMeta(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const meta: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new MmogitError('ERR_INVALID_ARGUMENT', `--meta "${pair.slice(0, 80)}" is not key=value`);
    const key = pair.slice(0, eq);
    if (Object.hasOwn(meta, key))
      throw new MmogitError('ERR_INVALID_ARGUMENT', `--meta ${key} is given twice`);
    meta[key] = pair.slice(eq + 1);
  }
  return meta;
}

function badFlag(flag: string, why: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', `--${flag} ${why}`, { details: { flag } });
}

/**
 * The message's own fields, checked as the daemon checks them (messaging-envelope-v2.ts), so a bad one is a
 * usage error whether or not a daemon runs, and never reaches it.
 */
function checkMessageFlags(args: SendArgs, meta: Record<string, string> | undefined): void {
  if (args.type !== undefined) {
    if (args.type === FILE_MESSAGE_TYPE)
      throw badFlag('type', `"${FILE_MESSAGE_TYPE}" is sent with --file PATH`);
    if (!MESSAGE_TYPE_RE.test(args.type)) {
      throw badFlag(
        'type',
        `${JSON.stringify(args.type.slice(0, 80))} is not 1–64 letters, digits or . _ : / -`,
      );
    }
  }
  for (const [flag, value] of [
    ['thread', args.thread],
    ['reply-to', args.replyTo],
  ] as const) {
    if (value !== undefined && !MESSAGE_ID_RE.test(value)) {
      throw badFlag(
        flag,
        `must be a message id (32 hex characters), got ${JSON.stringify(value.slice(0, 80))}`,
      );
    }
  }
  if (meta === undefined) return;
  if (Object.keys(meta).length > MAX_META_ENTRIES)
    throw badFlag('meta', `is given more than ${MAX_META_ENTRIES} times`);
  const key = Object.keys(meta).find((k) => !META_KEY_RE.test(k));
  if (key !== undefined) {
    throw badFlag('meta', `key ${JSON.stringify(key.slice(0, 80))} is not 1–64 letters, digits or . _ -`);
  }
}

/**
 * `mmogit send <peer> [text] [--stdin] [--json-body] [--type T] [--thread ID] [--reply-to ID] [--meta k=v …]`
 * → `{"id","status":"delivered"|"queued","thread","to"}`. `<peer>` is an onion or a contact's alias.
 * `mmogit send <peer> --file PATH [--max-file-bytes N]`: see _send-file.ts.
 */
export default async function send(args: SendArgs): Promise<CommandResult> {
  const to = await resolvePeer(args, args.peer);
  if (args.file !== undefined) return (await import('./_send-file.js')).sendFile(args, to, args.file);
  // The file flags would be ignored without a file: refused, so a forgotten --file is not sent as text.
  for (const [flag, given] of [
    ['max-file-bytes', args.maxFileBytes !== undefined],
    ['background', args.background !== undefined],
  ] as const) {
    if (given) throw badFlag(flag, 'goes with --file PATH');
  }
  if (args.stdin && args.text !== undefined) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'give the message as an argument or on --stdin, not both');
  }
  const raw = args.stdin ? await readStdin() : args.text;
  if (raw === undefined || (raw.length === 0 && !args.jsonBody)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'message text is empty');
  }
  let body: unknown;
  if (args.jsonBody) {
    try {
      body = JSON.parse(raw);
    } catch {
      throw new MmogitError('ERR_INVALID_ARGUMENT', '--json-body: the message is not valid JSON', {
        details: { field: 'body' },
      });
    }
  }
  const meta = parseMeta(args.meta ?? []);
  checkMessageFlags(args, meta);
  const r = await callDaemon<{ id: string; status: 'delivered' | 'queued'; thread?: string }>(
    configDirOf(args),
    'send',
    {
      onion: to,
      ...(args.jsonBody ? { body } : { text: raw }),
      ...(args.type !== undefined ? { type: args.type } : {}),
      ...(args.thread !== undefined ? { thread: args.thread } : {}),
      ...(args.replyTo !== undefined ? { replyTo: args.replyTo } : {}),
      ...(meta ? { meta } : {}),
    },
    { timeoutMs: 120_000 },
  );
  return {
    data: { ...r, to },
    human:
      r.status === 'delivered' ? `delivered (${r.id})` : `queued (${r.id}): will retry while the daemon runs`,
  };
}
