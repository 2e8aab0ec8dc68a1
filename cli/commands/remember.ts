import { MmogitError } from '../../src/errors.js';
import { parseOnionAddress } from '../../src/identity/onion.js';
import { MEMORY_TYPES, type MemoryType } from '../../src/memory/entry.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { splitList } from './_context.js';
import { openMemory } from './_memory.js';
import { parseDuration } from './tor-advertise.js';

interface RememberArgs extends GlobalOptions {
  content: string;
  type: string;
  tags?: string;
  confidence?: number;
  references?: string;
  expires?: string;
  private?: boolean;
  share?: string;
}

function expiry(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?[smhd]$/.test(text)) return new Date(Date.now() + parseDuration(text)).toISOString();
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) {
    throw new MmogitError(
      'ERR_INVALID_MEMORY',
      `--expires "${text}" is neither a date nor a duration like 7d`,
    );
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
  if (args.confidence !== undefined && !(args.confidence >= 0 && args.confidence <= 1)) {
    throw new MmogitError('ERR_INVALID_MEMORY', `confidence must be between 0 and 1, got ${args.confidence}`);
  }
  const expiresAt = expiry(args.expires);
  const { agent, store } = await openMemory(args);
  try {
    const entry = await store.remember({
      type: args.type as MemoryType,
      content: args.content,
      tags: splitList(args.tags),
      references: splitList(args.references),
      ...(args.confidence !== undefined ? { confidence: args.confidence } : {}),
      ...(expiresAt ? { expiresAt } : {}),
      ...(args.share !== undefined
        ? { shareWith: splitList(args.share).map((p) => parseOnionAddress(p).hostname) }
        : { visibility: args.private ? ('private' as const) : ('public' as const) }),
    });
    const shared =
      args.share !== undefined ? `, private, shared with ${splitList(args.share).length} peer(s)` : '';
    return { data: entry, human: `remembered ${args.type} (${entry.createdAt}${shared})` };
  } finally {
    await agent.close();
  }
}
