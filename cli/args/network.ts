/**
 * The yargs table of `testnet` (the private Tor network) and the internal `daemon` (with `daemon log`): options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv, Options } from 'yargs';
import type { Handle } from './_handle.js';

/**
 * The internal `mmogit daemon`'s flags (what `tor start` passes it), hidden from help. yargs also hands them to
 * the subcommand `daemon log`, which refuses each one given (cli/commands/daemon-log.ts reads this table).
 */
export const DAEMON_OPTIONS = {
  network: { type: 'string', hidden: true },
  'tor-control': { type: 'string', hidden: true },
  'tor-password-stdin': { type: 'boolean', hidden: true },
  'use-bridges': { type: 'boolean', hidden: true },
  policy: { type: 'string', hidden: true },
  'allow-classical': { type: 'boolean', hidden: true },
  a2a: { type: 'boolean', hidden: true },
  bootstrap: { type: 'string', array: true, hidden: true },
  metrics: { type: 'string', hidden: true },
  'network-bootstrap': { type: 'boolean', default: true, hidden: true },
} as const satisfies Record<string, Options>;

export function networkCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y
    .command('testnet', 'the built-in private Tor network on loopback', (y) =>
      y
        .option('dir', { type: 'string', describe: 'network dir (default <config-dir>/testnet)' })
        .command(
          'up',
          'start the private network; returns when it is usable',
          (y2) =>
            y2
              .option('authorities', { type: 'string', describe: 'directory authorities, 1..16 (default 4)' })
              .option('relays', { type: 'string', describe: 'extra relays, 0..32 (default 0)' })
              .option('metrics', {
                type: 'string',
                describe: "serve the bootstrap agent's Prometheus metrics on PORT or HOST:PORT",
              }),
          handle(() => import('../commands/testnet.js')),
        )
        .command(
          'down',
          'stop every process of the network (safe to repeat)',
          {},
          handle(() => import('../commands/testnet.js')),
        )
        .command(
          'status',
          'show the network’s processes',
          {},
          handle(() => import('../commands/testnet.js')),
        )
        .demandCommand(1, 'name a testnet subcommand'),
    )
    .command(
      'daemon',
      false, // internal: what `tor start` runs in the background (its one public subcommand: `daemon log`)
      (y) =>
        y
          .command(
            'log',
            'show the agent daemon’s log (hook output included); --follow keeps printing',
            (y2) =>
              y2
                .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new lines' })
                .option('lines', { alias: 'n', type: 'string', describe: 'the last N lines (default 100)' }),
            handle(() => import('../commands/daemon-log.js')),
          )
          .options(DAEMON_OPTIONS),
      handle(() => import('../commands/daemon.js')),
    );
}
