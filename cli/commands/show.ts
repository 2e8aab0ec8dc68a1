import { BOUNDS, parseCount } from '../_numbers.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { entries as count, entryLine, entryView, openMemory } from './_memory.js';

/** `mmogit show`: every entry (posts, memories, messages; own and synced), newest first, each verified. */
export default async function show(args: GlobalOptions & { limit?: string }): Promise<CommandResult> {
  const limit = args.limit === undefined ? undefined : parseCount(args.limit, 'limit', BOUNDS.limit);
  const { agent, store } = await openMemory(args);
  try {
    // Unfiltered: every entry, unreadable ones included (flagged), so nothing in the store is hidden.
    const entries = await store.recall({ ...(limit !== undefined ? { limit } : {}) });
    const unverified = entries.filter((e) => !e.verified).length;
    return {
      data: entries.map(entryView),
      human:
        entries.length === 0
          ? 'no entries'
          : `${entries.map(entryLine).join('\n')}${unverified ? `\n${count(unverified)} FAILED verification` : ''}`,
    };
  } finally {
    await agent.close();
  }
}
