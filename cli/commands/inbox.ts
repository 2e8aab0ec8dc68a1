import { callDaemon } from '../../src/agent/daemon.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

interface InboxItem {
  id: string;
  from: string;
  text: string;
  timestamp: number;
  verified: boolean;
}

/** `mmogit inbox` → `[{"id","from","text","timestamp","verified"}]` */
export default async function inbox(args: GlobalOptions & { limit?: number }): Promise<CommandResult> {
  const items = await callDaemon<InboxItem[]>(configDirOf(args), 'inbox', { limit: args.limit });
  const human =
    items.length === 0
      ? 'no messages'
      : items
          .map(
            (m) =>
              `${new Date(m.timestamp).toISOString()}  ${m.from.slice(0, 16)}…  ${m.verified ? '✓' : '✗ UNVERIFIED'}  ${m.text}`,
          )
          .join('\n');
  return { data: items, human };
}
