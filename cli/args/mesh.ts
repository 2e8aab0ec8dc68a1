/**
 * The yargs table of the `mesh` commands (relay, SOCKS5 entry, status, stop): options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';

export function meshCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y.command('mesh', 'the post-quantum mesh: relay, SOCKS5 entry, status, stop (docs/mesh.md)', (y) =>
    y
      .command(
        'relay',
        'relay mesh circuits with this agent’s key until `mesh stop` (onion; --listen adds TCP)',
        (y2) =>
          y2
            .option('listen', { type: 'string', describe: 'also accept links on plain TCP HOST:PORT' })
            .option('exit-to', {
              type: 'string',
              array: true,
              describe: 'allow exits to HOST:PORT[-PORT] (default: mmogit agents by onion only)',
            })
            .option('family', { type: 'string', array: true, describe: 'onions of relays you also run' })
            .option('network', {
              type: 'string',
              describe: 'private Tor network dir (env MMOGIT_TOR_NETWORK)',
            })
            .option('tor', {
              type: 'boolean',
              default: true,
              describe: 'start tor (--no-tor: TCP only, needs --listen)',
            })
            .option('interval', {
              type: 'string',
              describe: 'keepalive/beacon interval in ms, 10..60000 (default 500)',
            })
            .option('timeout', {
              type: 'string',
              describe: 'seconds to wait for tor and the onion, 1..3600 (default 180)',
            }),
        handle(() => import('../commands/mesh-relay.js')),
      )
      .command(
        'socks',
        'serve SOCKS5 on 127.0.0.1 through mesh circuits until `mesh stop`',
        (y2) =>
          y2
            .option('port', { type: 'string', describe: 'SOCKS port, 0..65535 (default 10809; 0: any)' })
            .option('hops', { type: 'string', describe: 'relays per circuit, 1..5 (default 3)' })
            .option('relay', {
              type: 'string',
              array: true,
              describe: 'ONION[@HOST:PORT]: a relay to use (default: relays found in the DHT)',
            })
            .option('network', {
              type: 'string',
              describe: 'private Tor network dir (env MMOGIT_TOR_NETWORK)',
            })
            .option('interval', {
              type: 'string',
              describe: 'beacon interval in ms, 10..60000 (default 500)',
            })
            .option('timeout', {
              type: 'string',
              describe: 'seconds to wait for tor, 1..3600 (default 180)',
            }),
        handle(() => import('../commands/mesh-socks.js')),
      )
      .command(
        'status',
        'show this config dir’s mesh process',
        {},
        handle(() => import('../commands/mesh-status.js')),
      )
      .command(
        'stop',
        'stop this config dir’s mesh process (idempotent)',
        {},
        handle(() => import('../commands/mesh-stop.js')),
      )
      .demandCommand(1, 'name a mesh subcommand'),
  );
}
