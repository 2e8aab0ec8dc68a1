import { join } from 'node:path';
import { A2aJournal } from '../../src/a2a/journal.js';
import { A2A_FILES } from '../../src/a2a/serve.js';
import { BOUNDS, parseCount } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** `mmogit a2a inbox [--limit N]` → messages received over A2A, oldest first (read from the journal file). */
export default async function a2aInbox(args: GlobalOptions & { limit?: string }): Promise<CommandResult> {
  const limit = args.limit === undefined ? undefined : parseCount(args.limit, 'limit', BOUNDS.limit);
  const all = await new A2aJournal(join(configDirOf(args), A2A_FILES.journal)).list();
  const items = limit !== undefined ? all.slice(-limit) : all;
  return {
    data: items,
    human:
      items.length === 0
        ? 'no A2A messages'
        : items
            .map(
              (m) =>
                `${t(String(m.receivedAt))}  a2a ${m.verified ? `✓ ${t(String(m.from))}` : '(unauthenticated)'}  task ${t(String(m.taskId))}  ${t(String(m.text))}`,
            )
            .join('\n'),
  };
}
