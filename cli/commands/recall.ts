import { MmogitError } from '../../src/errors.js';
import { MEMORY_TYPES, type MemoryType } from '../../src/memory/entry.js';
import { BOUNDS, parseCount, parseDecimal } from '../_numbers.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { entries as count, entryLine, entryView, openMemory, unreadableCount } from './_memory.js';
import { resolvePeer } from './_peers.js';

interface RecallArgs extends GlobalOptions {
  type?: string;
  tag?: string;
  hours?: string;
  author?: string;
  limit?: string;
  all?: boolean;
}

/**
 * `mmogit recall [-t type] [--tag t] [--hours N] [--all]`: memories (own and synced), newest first, each
 * verified. Entries that fail verification are listed flagged; entries that cannot be read at all are counted
 * on stderr, and listed with `--all`.
 */
export default async function recall(args: RecallArgs): Promise<CommandResult> {
  if (args.type !== undefined && !(MEMORY_TYPES as readonly string[]).includes(args.type)) {
    throw new MmogitError(
      'ERR_INVALID_MEMORY',
      `unknown memory type "${args.type}" (one of ${MEMORY_TYPES.join(', ')})`,
    );
  }
  const hours = args.hours === undefined ? undefined : parseDecimal(args.hours, 'hours', BOUNDS.hours);
  const limit = args.limit === undefined ? undefined : parseCount(args.limit, 'limit', BOUNDS.limit);
  // An author is an onion, a public key (64 hex) or a contact's alias; anything else can match nothing, so it
  // is refused (ERR_INVALID_ONION, ERR_UNKNOWN_CONTACT) instead of answering "no memories".
  const author =
    args.author === undefined || /^[0-9a-f]{64}$/.test(args.author)
      ? args.author
      : await resolvePeer(args, args.author);
  const { agent, store } = await openMemory(args);
  try {
    const entries = await store.recall({
      kind: 'memory',
      ...(args.type ? { type: args.type as MemoryType } : {}),
      ...(args.tag ? { tag: args.tag } : {}),
      ...(hours !== undefined ? { sinceHours: hours } : {}),
      ...(author !== undefined ? { author } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(args.all ? { includeUnreadable: true } : {}),
    });
    const unverified = entries.filter((e: { verified: boolean }) => !e.verified).length;
    const hidden = args.all ? 0 : await unreadableCount(store);
    if (hidden > 0) {
      note(
        `warning: ${count(hidden)} of the memory store FAILED verification (unreadable: corrupt or tampered) and ${hidden === 1 ? 'is' : 'are'} not listed; run \`mmogit recall --all\` to list them`,
      );
    }
    return {
      data: entries.map(entryView),
      human:
        entries.length === 0
          ? 'no memories'
          : `${entries.map(entryLine).join('\n')}${unverified ? `\n${count(unverified)} FAILED verification` : ''}`,
    };
  } finally {
    await agent.close();
  }
}
