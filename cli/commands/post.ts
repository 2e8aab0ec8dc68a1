import type { CommandResult, GlobalOptions } from '../output.js';
import { openMemory } from './_memory.js';

/** `mmogit post <text>` */
export default async function post(args: GlobalOptions & { text: string }): Promise<CommandResult> {
  const { agent, store } = await openMemory(args);
  try {
    const entry = await store.post(args.text);
    return { data: entry, human: `posted (${entry.createdAt})` };
  } finally {
    await agent.close();
  }
}
