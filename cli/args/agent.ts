/**
 * The yargs table of `init` and the `tor` commands (the agent daemon on tor): options and lazy loaders only; each command's code is under cli/commands/.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';

export function agentCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  return y
    .command(
      'init',
      'create this agent’s identity (24-word phrase → Ed25519 key → onion)',
      (y) =>
        y
          .option('seed-phrase', {
            type: 'string',
            describe: 'restore from a BIP39 phrase (12, 15, 18, 21 or 24 words)',
          })
          .option('from-seed-file', {
            type: 'string',
            describe: 'restore from a Rust mmogit ~/.mmogit/.seed file (the phrase is not copied)',
            conflicts: 'seed-phrase',
          })
          .option('force', {
            type: 'boolean',
            describe: 'replace an existing identity (the old key is lost)',
          }),
      handle(() => import('../commands/init.js')),
    )
    .command(
      'tor',
      'the agent daemon on Tor: start, stop, status, address, connect, advertise, discover',
      (y) =>
        y
          .command(
            'start',
            'start the agent daemon (tor + onion service + libp2p node) in the background',
            (y2) =>
              y2
                .option('network', {
                  type: 'string',
                  describe: 'private Tor network dir (env MMOGIT_TOR_NETWORK)',
                })
                .option('tor-control', {
                  type: 'string',
                  describe: 'attach to a running tor: host:port or socket path',
                })
                .option('tor-password', {
                  type: 'string',
                  describe: 'control-port password for --tor-control',
                })
                .option('use-bridges', {
                  type: 'boolean',
                  describe: 'connect through the bridges in config.json',
                })
                .option('policy', {
                  choices: [
                    'tor-only',
                    'tor-then-direct',
                    'direct-only',
                    'mesh-only',
                    'mesh-then-tor',
                  ] as const,
                  describe: 'transport policy (default tor-only)',
                })
                .option('allow-classical', {
                  type: 'boolean',
                  describe: 'accept peers without the post-quantum channel (weaker)',
                })
                .option('a2a', {
                  type: 'boolean',
                  describe: 'also serve A2A v1.0 on the onion (port 80, agent card, JSON-RPC)',
                })
                .option('bootstrap', {
                  type: 'string',
                  array: true,
                  describe: 'DHT bootstrap multiaddrs (/onion3/…)',
                })
                .option('foreground', { type: 'boolean', describe: 'run in this process until Ctrl-C' })
                .option('metrics', {
                  type: 'string',
                  describe:
                    'serve Prometheus metrics on PORT or HOST:PORT (loopback unless you name an address)',
                })
                .option('timeout', {
                  type: 'string',
                  describe: 'seconds to wait for the onion, 1..3600 (default 180)',
                }),
            handle(() => import('../commands/tor-start.js')),
          )
          .command(
            'stop',
            'stop the agent daemon (idempotent)',
            {},
            handle(() => import('../commands/tor-stop.js')),
          )
          .command(
            'status',
            'show daemon, tor and onion status',
            {},
            handle(() => import('../commands/tor-status.js')),
          )
          .command(
            'address',
            'print this agent’s onion address (no tor needed)',
            {},
            handle(() => import('../commands/tor-address.js')),
          )
          .command(
            'connect <peer>',
            'reach a peer (onion or contact): verified identity, transport, handshake and round-trip time',
            (y2) =>
              y2.positional('peer', {
                type: 'string',
                demandOption: true,
                describe: 'onion or contact alias',
              }),
            handle(() => import('../commands/tor-connect.js')),
          )
          .command(
            'advertise',
            'publish this agent’s signed advertisement in the DHT',
            (y2) =>
              y2
                .option('services', {
                  type: 'string',
                  demandOption: true,
                  describe: 'comma-separated, e.g. memory_sync',
                })
                .option('ttl', {
                  type: 'string',
                  default: '6h',
                  describe: 'lifetime, e.g. 30m, 6h, at most 24h',
                }),
            handle(() => import('../commands/tor-advertise.js')),
          )
          .command(
            'discover <service>',
            'find agents offering a service (verified advertisements, newest first)',
            (y2) =>
              y2
                .positional('service', { type: 'string', demandOption: true })
                .option('limit', { type: 'string', describe: 'at most N agents, 1..1000 (default 20)' })
                .option('timeout', { type: 'string', describe: 'seconds, 1..3600 (default 30)' }),
            handle(() => import('../commands/tor-discover.js')),
          )
          .demandCommand(1, 'name a tor subcommand'),
    );
}
