/**
 * The yargs table of the messaging commands: `send`, `inbox`, `outbox`, `ping`, `contacts`: options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';

export function messagingCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y
    .command(
      'send <peer> [text]',
      'send a signed, post-quantum-encrypted message to an onion or contact (queued if the peer is offline)',
      (y) =>
        y
          .positional('peer', { type: 'string', demandOption: true, describe: 'onion or contact alias' })
          .positional('text', { type: 'string', describe: 'the message (or use --stdin)' })
          .option('stdin', { type: 'boolean', describe: 'read the message from stdin' })
          .option('json-body', { type: 'boolean', describe: 'the message is JSON: send it as the body' })
          .option('type', {
            type: 'string',
            describe: 'message|task-proposal|task-result|capability-query|status-update|<custom>',
          })
          .option('thread', { type: 'string', describe: 'thread id (default: the replied message’s thread)' })
          .option('reply-to', { type: 'string', describe: 'id of the message this answers' })
          // One value per --meta: `--meta k=v hello` keeps `hello` as the text instead of a second pair.
          .option('meta', {
            type: 'string',
            array: true,
            nargs: 1,
            describe: 'metadata key=value (repeatable)',
          })
          .option('file', {
            type: 'string',
            describe: 'send this file (streamed, resumable, sha256-checked)',
          })
          .option('max-file-bytes', {
            type: 'string',
            describe: 'refuse a --file over N bytes (default 1 GiB)',
          })
          .option('background', {
            type: 'boolean',
            describe: 'with --file: answer "queued" once the offer is in the outbox; the daemon sends it',
          }),
      handle(() => import('../commands/send.js')),
    )
    .command(
      'inbox',
      'list received messages (oldest first, each with a cursor); --follow streams new ones',
      (y) =>
        y
          .option('from', { type: 'string', describe: 'only from this onion or contact' })
          .option('type', { type: 'string', describe: 'only this message type' })
          .option('thread', { type: 'string', describe: 'only this thread' })
          .option('since', { type: 'string', describe: 'only after this cursor' })
          .option('limit', { type: 'string', describe: 'only the newest N' })
          .option('follow', {
            alias: 'f',
            type: 'boolean',
            describe: 'keep printing new messages (NDJSON with --json), across daemon restarts',
          }),
      handle(() => import('../commands/inbox.js')),
    )
    .command(
      'outbox [action] [id]',
      'messages and files waiting for an ack: list, retry <id> now, drop <id>',
      (y) =>
        y
          .positional('action', { choices: ['list', 'retry', 'drop'] as const, default: 'list' })
          .positional('id', { type: 'string', describe: 'message id (for retry and drop)' }),
      handle(() => import('../commands/outbox.js')),
    )
    .command(
      'ping <peer>',
      'round trips to a peer (onion or contact) over one PQ session, with its verified identity and route',
      (y) =>
        y
          .positional('peer', { type: 'string', demandOption: true })
          .option('count', {
            alias: 'c',
            type: 'string',
            describe: 'how many pings (default 4, at most 100)',
          })
          .option('fresh', { type: 'boolean', describe: 'start a new session (measures the handshake)' }),
      handle(() => import('../commands/ping.js')),
    )
    .command('contacts', 'local aliases for peers’ onions (never sent to anyone)', (y) =>
      y
        .command(
          'list',
          'list contacts',
          {},
          handle(() => import('../commands/contacts.js')),
        )
        .command(
          'add <alias> <onion>',
          'name a peer',
          (y2) =>
            y2
              .positional('alias', { type: 'string', demandOption: true })
              .positional('onion', { type: 'string', demandOption: true })
              .option('replace', { type: 'boolean', describe: 'point an existing alias at this onion' }),
          handle(() => import('../commands/contacts.js')),
        )
        .command(
          'rm <alias>',
          'forget a contact',
          (y2) => y2.positional('alias', { type: 'string', demandOption: true }),
          handle(() => import('../commands/contacts.js')),
        )
        .demandCommand(1, 'name a contacts subcommand (list, add, rm)'),
    );
}
