/**
 * The yargs table of the memory commands: `post`, `remember`, `recall`, `show`, `sync`: options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';

export function memoryCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y
    .command(
      'post <text>',
      'write a signed post to this agent’s memory',
      (y) => y.positional('text', { type: 'string', demandOption: true }),
      handle(() => import('../commands/post.js')),
    )
    .command(
      'remember <content>',
      'store a structured memory',
      (y) =>
        y
          .positional('content', { type: 'string', demandOption: true })
          .option('type', {
            alias: 't',
            type: 'string',
            demandOption: true,
            describe: 'observation|learning|relationship|task|experience|reflection|question',
          })
          .option('tags', { type: 'string', describe: 'comma-separated tags' })
          .option('confidence', { type: 'string', describe: '0..1' })
          .option('references', { type: 'string', describe: 'comma-separated entry ids' })
          .option('expires', { type: 'string', describe: 'ISO date or duration (e.g. 7d)' })
          .option('private', { type: 'boolean', describe: 'keep it private (never synced in clear)' })
          .option('share', {
            type: 'string',
            describe:
              'private, but readable by these peers (comma-separated onions or contacts): encrypted to each',
          }),
      handle(() => import('../commands/remember.js')),
    )
    .command(
      'recall',
      'list memories (verified), newest first',
      (y) =>
        y
          .option('type', {
            alias: 't',
            type: 'string',
            describe:
              'only this memory type (observation|learning|relationship|task|experience|reflection|question)',
          })
          .option('tag', { type: 'string', describe: 'only memories with this tag' })
          .option('hours', { type: 'string', describe: 'only the last N hours' })
          .option('author', { type: 'string', describe: 'only this author (onion or contact)' })
          .option('limit', { type: 'string', describe: 'the newest N memories' })
          .option('all', {
            type: 'boolean',
            describe: 'also list entries that cannot be read at all (corrupt or tampered)',
          }),
      handle(() => import('../commands/recall.js')),
    )
    .command(
      'show',
      'list every entry (posts, memories, messages), verified',
      (y) => y.option('limit', { type: 'string', describe: 'the newest N entries' }),
      handle(() => import('../commands/show.js')),
    )
    .command(
      'sync [peers..]',
      'sync memory with peers (default: agents found via discover memory_sync, and configured peers)',
      (y) =>
        y
          .positional('peers', { type: 'string', array: true })
          .option('timeout', { type: 'string', describe: 'seconds, 1..3600 (default 120)' }),
      handle(() => import('../commands/sync.js')),
    );
}
