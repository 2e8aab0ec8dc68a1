import { MmogitError } from '../../src/errors.js';
import { MEMORY_TYPES, type MemoryType } from '../../src/memory/entry.js';
import { BOUNDS, looksLikeDuration, parseDecimal, parseDuration } from '../_numbers.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { splitList } from './_context.js';
import { openMemory } from './_memory.js';
import { resolvePeers } from './_peers.js';

interface RememberArgs extends GlobalOptions {
  content: string;
  type: string;
  tags?: string;
  confidence?: string;
  references?: string;
  expires?: string;
  private?: boolean;
  share?: string;
}

/** `--expires`: a duration from now (bounded) or a date in the future that an entry can carry (year ≤ 9999). */
function expiry(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const code = 'ERR_INVALID_MEMORY';
  if (typeof value === 'string' && looksLikeDuration(value)) {
    return new Date(Date.now() + parseDuration(value, 'expires', BOUNDS.expiresMs, { code })).toISOString();
  }
  const text = typeof value === 'string' ? value.trim() : '';
  const d = new Date(text);
  if (text === '' || Number.isNaN(d.getTime()) || d.getUTCFullYear() > 9999) {
    throw new MmogitError(
      code,
      `--expires ${JSON.stringify(String(value))} is neither a date nor a duration like 7d`,
    );
  }
  if (d.getTime() <= Date.now()) {
    throw new MmogitError(code, `--expires ${JSON.stringify(text)} is in the past`);
  }
  return d.toISOString();
}

/** `mmogit remember -t <type> <content> [--tags a,b] [--confidence 0.9]` */
export default async function remember(args: RememberArgs): Promise<CommandResult> {
  if (!(MEMORY_TYPES as readonly string[]).includes(args.type)) {
    throw new MmogitError(
      'ERR_INVALID_MEMORY',
      `unknown memory type "${args.type}" (one of ${MEMORY_TYPES.join(', ')})`,
    );
  }
  const confidence =
    args.confidence === undefined
      ? undefined
      : parseDecimal(args.confidence, 'confidence', BOUNDS.confidence, { code: 'ERR_INVALID_MEMORY' });
  const expiresAt = expiry(args.expires);
  const shareWith = args.share === undefined ? undefined : await resolvePeers(args, splitList(args.share));
  const { agent } = await openMemory(args);
  try {
    // Through the agent: a full disk is ERR_DISK_FULL there.
    const entry = await agent.remember({
      type: args.type as MemoryType,
      content: args.content,
      tags: splitList(args.tags),
      references: splitList(args.references),
      ...(confidence !== undefined ? { confidence } : {}),
      ...(expiresAt ? { expiresAt } : {}),
      ...(shareWith !== undefined
        ? { shareWith }
        : { visibility: args.private ? ('private' as const) : ('public' as const) }),
    });
    const shared = shareWith !== undefined ? `, private, shared with ${shareWith.length} peer(s)` : '';
    return { data: entry, human: `remembered ${args.type} (${entry.createdAt}${shared})` };
  } finally {
    await agent.close();
  }
}
