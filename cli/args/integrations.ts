/**
 * The yargs table of the front ends for other agent software: `a2a`, `mcp`: options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';

export function integrationCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y
    .command('a2a', 'call A2A agents through tor; messages received over A2A', (y) =>
      y
        .command(
          'card <target>',
          'fetch an A2A agent card (onion or URL) through tor; an onion’s must be signed by its key',
          (y2) =>
            y2
              .positional('target', { type: 'string', demandOption: true })
              .option('verify', {
                type: 'boolean',
                default: true,
                describe: 'require the card signed by its onion key (--no-verify: accept any)',
              })
              .option('timeout', { type: 'string', describe: 'seconds, 1..3600 (default 90)' }),
          handle(() => import('../commands/a2a-card.js')),
        )
        .command(
          'send <target> [text]',
          'send an A2A message (SendMessage) through tor and print the task result',
          (y2) =>
            y2
              .positional('target', { type: 'string', demandOption: true })
              .positional('text', { type: 'string' })
              .option('stdin', { type: 'boolean', describe: 'read the text from stdin' })
              .option('data', { type: 'string', describe: 'a JSON data part' })
              .option('verify', {
                type: 'boolean',
                default: true,
                describe: 'require the card signed by its onion key (--no-verify: accept any)',
              })
              .option('timeout', { type: 'string', describe: 'seconds, 1..3600 (default 120)' }),
          handle(() => import('../commands/a2a-send.js')),
        )
        .command(
          'inbox',
          'list messages this agent received over A2A (no daemon needed)',
          (y2) => y2.option('limit', { type: 'string', describe: 'the newest N messages' }),
          handle(() => import('../commands/a2a-inbox.js')),
        )
        .demandCommand(1, 'name an a2a subcommand'),
    )
    .command(
      'mcp',
      'serve this agent as MCP tools on stdin/stdout (for an MCP host to spawn)',
      (y) =>
        y
          .option('start', { type: 'boolean', describe: 'start the agent daemon first if it is not running' })
          .option('network', {
            type: 'string',
            describe: 'private Tor network dir for --start (env MMOGIT_TOR_NETWORK)',
          }),
      handle(() => import('../commands/mcp.js')),
    );
}
