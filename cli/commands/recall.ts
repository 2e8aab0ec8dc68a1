import { MmogitError } from '../../src/errors.js';
import { MEMORY_TYPES, type MemoryType } from '../../src/memory/entry.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { entryLine, entryView, openMemory } from './_memory.js';

interface RecallArgs extends GlobalOptions {
  type?: string;
  tag?: string;
  hours?: number;
  author?: string;
  limit?: number;
}

/** `mmogit recall [-t type] [--tag t] [--hours N]`: memories (own and synced), newest first, each verified. */
export default async function recall(args: RecallArgs): Promise<CommandResult> {
  if (args.type !== undefined && !(MEMORY_TYPES as readonly string[]).includes(args.type)) {
    throw new MmogitError(
      'ERR_INVALID_MEMORY',
      `unknown memory type "${args.type}" (one of ${MEMORY_TYPES.join(', ')})`,
    );
  }
  if (args.hours !== undefined && !(args.hours > 0)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--hours must be a positive number');
  }
  const { agent, store } = await openMemory(args);
  try {
    const entries = await store.recall({
      kind: 'memory',
      ...(args.type ? { type: args.type as MemoryType } : {}),
      ...(args.tag ? { tag: args.tag } : {}),
      ...(args.hours ? { sinceHours: args.hours } : {}),
      ...(args.author ? { author: args.author } : {}),
      ...(args.limit ? { limit: args.limit } : {}),
    });
    const unverified = entries.filter((e: { verified: boolean }) => !e.verified).length;
    return {
      data: entries.map(entryView),
      human:
        entries.length === 0
          ? 'no memories'
          : `${entries.map(entryLine).join('\n')}${unverified ? `\n${unverified} entr${unverified === 1 ? 'y' : 'ies'} FAILED verification` : ''}`,
    };
  } finally {
    await agent.close();
  }
}
