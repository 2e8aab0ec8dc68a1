/**
 * The `mmogit` command line: argument parsing (yargs), output and exit codes only. Every command lives in its
 * own module under cli/commands/, loaded lazily so quick commands (`mmogit tor address`) never load the
 * network stack; each returns data and throws typed errors, and this file is the one place that prints them
 * and picks the exit code (docs/cli.md).
 */
import { MmogitError } from '../src/errors.js';
import { type CommandResult, type GlobalOptions, printResult, reportError } from './output.js';

type Args = GlobalOptions & Record<string, unknown>;
// Each command declares its own argument type; yargs has validated the shape before the call.
type Loader = () => Promise<{ default: (args: never) => Promise<CommandResult> }>;

/** Runs a lazily loaded command and sets the process exit code. */
async function run(load: Loader, args: Args): Promise<void> {
  try {
    const { default: command } = await load();
    const result = await command(args as never);
    printResult(result, args);
    process.exitCode = result.exitCode ?? 0;
  } catch (error) {
    process.exitCode = reportError(error, args);
  }
}

/**
 * Fast path for the commands whose start-up time is a benchmark target (`tor address`, docs/benchmarks.md):
 * when the arguments are only these words and global flags, skip loading yargs (~100 ms here).
 */
function fastPath(argv: string[]): { load: Loader; args: Args } | null {
  const words: string[] = [];
  const args: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') args.json = true;
    else if (a === '-v' || a === '--verbose') args.verbose = true;
    else if (a === '--config-dir' && i + 1 < argv.length) args.configDir = argv[++i];
    else if (a.startsWith('--config-dir=')) args.configDir = a.slice('--config-dir='.length);
    else if (a.startsWith('-')) return null;
    else words.push(a);
  }
  if (words.join(' ') === 'tor address') return { load: () => import('./commands/tor-address.js'), args };
  return null;
}

async function main(argv: string[]): Promise<void> {
  const fast = fastPath(argv);
  if (fast) return run(fast.load, fast.args);

  const { default: yargs } = await import('yargs');
  let pending: Promise<void> | undefined;
  const handle = (load: Loader) => (args: unknown) => {
    pending = run(load, args as Args);
  };

  const parser = yargs(argv)
    .scriptName('mmogit')
    .usage('$0 <command> [options]\n\nPeer-to-peer agents over Tor: messages and git-backed memory.')
    .option('config-dir', {
      type: 'string',
      describe: 'agent config dir (default: $MMOGIT_HOME or ~/.mmogit)',
      global: true,
    })
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout', global: true })
    .option('verbose', {
      alias: 'v',
      type: 'boolean',
      describe: 'show stack traces and debug detail',
      global: true,
    })
    .command(
      'init',
      'create this agent’s identity (24-word phrase → Ed25519 key → onion)',
      (y) =>
        y
          .option('seed-phrase', {
            type: 'string',
            describe: 'restore from an existing 24-word BIP39 phrase',
          })
          .option('force', {
            type: 'boolean',
            describe: 'replace an existing identity (the old key is lost)',
          }),
      handle(() => import('./commands/init.js')),
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
                  choices: ['tor-only', 'tor-then-direct', 'direct-only'] as const,
                  describe: 'transport policy (default tor-only)',
                })
                .option('allow-classical', {
                  type: 'boolean',
                  describe: 'accept peers without the post-quantum channel (weaker)',
                })
                .option('bootstrap', {
                  type: 'string',
                  array: true,
                  describe: 'DHT bootstrap multiaddrs (/onion3/…)',
                })
                .option('foreground', { type: 'boolean', describe: 'run in this process until Ctrl-C' })
                .option('timeout', {
                  type: 'number',
                  describe: 'seconds to wait for the onion (default 180)',
                }),
            handle(() => import('./commands/tor-start.js')),
          )
          .command(
            'stop',
            'stop the agent daemon (idempotent)',
            {},
            handle(() => import('./commands/tor-stop.js')),
          )
          .command(
            'status',
            'show daemon, tor and onion status',
            {},
            handle(() => import('./commands/tor-status.js')),
          )
          .command(
            'address',
            'print this agent’s onion address (no tor needed)',
            {},
            handle(() => import('./commands/tor-address.js')),
          )
          .command(
            'connect <onion>',
            'reach a peer: verified identity, transport, handshake and round-trip time',
            (y2) => y2.positional('onion', { type: 'string', demandOption: true }),
            handle(() => import('./commands/tor-connect.js')),
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
                .option('ttl', { type: 'string', default: '6h', describe: 'lifetime, e.g. 30m, 6h, 1d' }),
            handle(() => import('./commands/tor-advertise.js')),
          )
          .command(
            'discover <service>',
            'find agents offering a service (verified advertisements, newest first)',
            (y2) =>
              y2
                .positional('service', { type: 'string', demandOption: true })
                .option('limit', { type: 'number', default: 20 })
                .option('timeout', { type: 'number', default: 30, describe: 'seconds' }),
            handle(() => import('./commands/tor-discover.js')),
          )
          .demandCommand(1, 'name a tor subcommand'),
    )
    .command(
      'send <onion> <text>',
      'send a signed, post-quantum-encrypted message (queued if the peer is offline)',
      (y) =>
        y.positional('onion', { type: 'string', demandOption: true }).positional('text', { type: 'string' }),
      handle(() => import('./commands/send.js')),
    )
    .command(
      'inbox',
      'list received messages',
      (y) => y.option('limit', { type: 'number' }),
      handle(() => import('./commands/inbox.js')),
    )
    .command(
      'post <text>',
      'write a signed post to this agent’s memory',
      (y) => y.positional('text', { type: 'string', demandOption: true }),
      handle(() => import('./commands/post.js')),
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
          .option('confidence', { type: 'number', describe: '0..1' })
          .option('references', { type: 'string', describe: 'comma-separated entry ids' })
          .option('expires', { type: 'string', describe: 'ISO date or duration (e.g. 7d)' })
          .option('private', { type: 'boolean', describe: 'keep it private (never synced in clear)' })
          .option('share', {
            type: 'string',
            describe: 'private, but readable by these peers (comma-separated onions): encrypted to each',
          }),
      handle(() => import('./commands/remember.js')),
    )
    .command(
      'recall',
      'list memories (verified), newest first',
      (y) =>
        y
          .option('type', { alias: 't', type: 'string' })
          .option('tag', { type: 'string' })
          .option('hours', { type: 'number', describe: 'only the last N hours' })
          .option('author', { type: 'string', describe: 'only this author (onion)' })
          .option('limit', { type: 'number' }),
      handle(() => import('./commands/recall.js')),
    )
    .command(
      'show',
      'list every entry (posts, memories, messages), verified',
      (y) => y.option('limit', { type: 'number' }),
      handle(() => import('./commands/show.js')),
    )
    .command(
      'sync [peers..]',
      'sync memory with peers (default: agents found via discover memory_sync, and configured peers)',
      (y) =>
        y
          .positional('peers', { type: 'string', array: true })
          .option('timeout', { type: 'number', default: 120, describe: 'seconds' }),
      handle(() => import('./commands/sync.js')),
    )
    .command('testnet', 'the built-in private Tor network on loopback', (y) =>
      y
        .option('dir', { type: 'string', describe: 'network dir (default <config-dir>/testnet)' })
        .command(
          'up',
          'start the private network; returns when it is usable',
          (y2) =>
            y2
              .option('authorities', { type: 'number', describe: 'directory authorities (default 4)' })
              .option('relays', { type: 'number', describe: 'extra relays (default 0)' }),
          handle(() => import('./commands/testnet.js')),
        )
        .command(
          'down',
          'stop every process of the network (safe to repeat)',
          {},
          handle(() => import('./commands/testnet.js')),
        )
        .command(
          'status',
          'show the network’s processes',
          {},
          handle(() => import('./commands/testnet.js')),
        )
        .demandCommand(1, 'name a testnet subcommand'),
    )
    .command(
      'daemon',
      false, // internal: what `tor start` runs in the background
      (y) =>
        y
          .option('network', { type: 'string' })
          .option('tor-control', { type: 'string' })
          .option('tor-password', { type: 'string' })
          .option('use-bridges', { type: 'boolean' })
          .option('policy', { type: 'string' })
          .option('allow-classical', { type: 'boolean' })
          .option('bootstrap', { type: 'string', array: true })
          .option('network-bootstrap', { type: 'boolean', default: true }),
      handle(() => import('./commands/daemon.js')),
    )
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .fail((message, error) => {
      // Throwing stops yargs before any command handler runs; main() reports it as a usage error.
      throw error ?? new MmogitError('ERR_INVALID_ARGUMENT', `${message} (see \`mmogit --help\`)`);
    })
    .wrap(Math.min(110, process.stdout.columns || 100));

  try {
    await parser.parseAsync();
  } catch (error) {
    process.exitCode = reportError(error, { json: argv.includes('--json'), verbose: argv.includes('-v') });
    return;
  }
  if (pending) await pending;
}

await main(process.argv.slice(2));
