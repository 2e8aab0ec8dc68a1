import type { CommandResult, GlobalOptions } from '../output.js';
import { openMemory } from './_memory.js';

/** `mmogit post <text>` */
export default async function post(args: GlobalOptions & { text: string }): Promise<CommandResult> {
  const { agent } = await openMemory(args);
  try {
    const entry = await agent.post(args.text);
    return { data: entry, human: `posted (${entry.createdAt})` };
  } finally {
    await agent.close();
  }
}
