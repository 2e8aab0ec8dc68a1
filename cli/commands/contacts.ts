import { ContactBook } from '../../src/agent/contacts.js';
import { MmogitError } from '../../src/errors.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

interface ContactsArgs extends GlobalOptions {
  _: (string | number)[];
  alias?: string;
  onion?: string;
  replace?: boolean;
}

/**
 * `mmogit contacts list` → `[{"alias","onion","addedAt"}]`; `contacts add <alias> <onion> [--replace]` →
 * the contact; `contacts rm <alias>` → the removed contact. Local names only: never sent to anyone.
 */
export default async function contacts(args: ContactsArgs): Promise<CommandResult> {
  const book = new ContactBook(configDirOf(args));
  const sub = String(args._[1] ?? 'list');
  if (sub === 'add') {
    if (!args.alias || !args.onion) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', 'usage: mmogit contacts add <alias> <onion>');
    }
    const c = await book.add(args.alias, args.onion, { replace: args.replace === true });
    return { data: c, human: `${c.alias} → ${c.onion}` };
  }
  if (sub === 'rm') {
    if (!args.alias) throw new MmogitError('ERR_INVALID_ARGUMENT', 'usage: mmogit contacts rm <alias>');
    const c = await book.remove(args.alias);
    return { data: c, human: `removed ${c.alias} (${c.onion})` };
  }
  const list = await book.list();
  return {
    data: list,
    human:
      list.length === 0 ? 'no contacts' : list.map((c) => `${c.alias.padEnd(20)}  ${c.onion}`).join('\n'),
  };
}
