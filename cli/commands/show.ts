import type { CommandResult, GlobalOptions } from '../output.js';
import { entryLine, entryView, openMemory } from './_memory.js';

/** `mmogit show`: every entry (posts, memories, messages; own and synced), newest first, each verified. */
export default async function show(args: GlobalOptions & { limit?: number }): Promise<CommandResult> {
  const { agent, store } = await openMemory(args);
  try {
    const entries = await store.recall({ ...(args.limit ? { limit: args.limit } : {}) });
    return {
      data: entries.map(entryView),
      human: entries.length === 0 ? 'no entries' : entries.map(entryLine).join('\n'),
    };
  } finally {
    await agent.close();
  }
}
