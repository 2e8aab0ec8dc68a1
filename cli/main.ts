/**
 * The `mmogit` command line: argument parsing (yargs; the command tables are in cli/args/), output and exit
 * codes only. Every command lives in its own module under cli/commands/, loaded lazily so quick commands
 * (`mmogit tor address`) never load the network stack; each returns data and throws typed errors, and this
 * file is the one place that prints them and picks the exit code (docs/cli.md).
 */
import { MmogitError } from '../src/errors.js';
import { glueNegativeValues, NUMERIC_FLAGS } from './_numbers.js';
import type { Loader } from './args/_handle.js';
import { type GlobalOptions, printResult, reportError } from './output.js';

type Args = GlobalOptions & Record<string, unknown>;

/** Runs a lazily loaded command and sets the process exit code. */
async function run(load: Loader, args: Args): Promise<void> {
  try {
    const { default: command } = await load();
    const result = await command(args as never);
    printResult(result, args);
    process.exitCode = result.exitCode ?? 0;
  } catch (error) {
    process.exitCode = reportError(await configDirFault(error, args), args);
  }
}

/**
 * "The daemon is not running (run `mmogit tor start`)" is the wrong advice when the config dir itself is the
 * fault: a mistyped `--config-dir` gets the config dir's own error (exit 3), as `tor start` would give it.
 */
async function configDirFault(error: unknown, args: Args): Promise<unknown> {
  if (!(error instanceof MmogitError) || error.code !== 'ERR_DAEMON_NOT_RUNNING') return error;
  const { stat } = await import('node:fs/promises');
  const { configDirMissing, notADirectory, partOfPathIsAFile, resolveConfigDir } = await import(
    '../src/identity/store.js'
  );
  const configDir = resolveConfigDir(args.configDir);
  try {
    if (!(await stat(configDir)).isDirectory()) return notADirectory(configDir, 'config dir');
    return error;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') return partOfPathIsAFile(configDir);
    if (code !== 'ENOENT') return error;
    return configDirMissing(configDir);
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

/** Flags that cli/_numbers.ts reads: it refuses a repeated one itself, with the flag's own error code. */
const SELF_CHECKED = new Set<string>(NUMERIC_FLAGS);

/**
 * yargs turns a flag given twice into an array, whatever its declared type: `--file a --file b` reached the
 * commands as `['a','b']` and failed as ERR_INTERNAL (a TypeError), `--type a --type b` as "unknown type a,b".
 * A flag that takes one value, given more than once, is a usage error here, before any command runs.
 */
function refuseRepeatedFlags(argv: Record<string, unknown>, y: unknown): void {
  // yargs hands middleware its instance for the command being run; getOptions() is not in its typings.
  const options = (y as { getOptions(): Record<'array' | 'string' | 'number', string[]> }).getOptions();
  const many = new Set(options.array);
  for (const flag of [...options.string, ...options.number]) {
    if (many.has(flag) || SELF_CHECKED.has(flag) || !Array.isArray(argv[flag])) continue;
    throw new MmogitError('ERR_INVALID_ARGUMENT', `--${flag} is given more than once`, {
      details: { flag },
    });
  }
}

async function main(argv: string[]): Promise<void> {
  const fast = fastPath(argv);
  if (fast) return run(fast.load, fast.args);

  // The command tables load with yargs, after the fast path.
  const [{ default: yargs }, { addCommands }, { HelpRequested, helpAsJson }] = await Promise.all([
    import('yargs'),
    import('./args/index.js'),
    import('./_help-json.js'),
  ]);

  let pending: Promise<void> | undefined;
  const handle = (load: Loader) => (args: unknown) => {
    pending = run(load, args as Args);
  };

  const globals = yargs(glueNegativeValues(argv))
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
    });

  const parser = addCommands(globals.middleware(refuseRepeatedFlags as never, true), handle)
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .fail((message, error) => {
      // Throwing stops yargs before any command handler runs; main() reports it as a usage error.
      // recommendCommands' text alone ("Did you mean send?") does not say what was wrong.
      const text = /^Did you mean /.test(message) ? `unknown command; d${message.slice(1)}` : message;
      throw error ?? new MmogitError('ERR_INVALID_ARGUMENT', `${text} (see \`mmogit --help\`)`);
    })
    .wrap(Math.min(110, process.stdout.columns || 100));
  // `--help --json`: the command's help as one JSON document (its options, positionals and subcommands).
  if (argv.includes('--json')) helpAsJson(parser);

  try {
    await parser.parseAsync();
  } catch (error) {
    if (error instanceof HelpRequested) {
      printResult({ data: error.help }, { json: true });
      return;
    }
    process.exitCode = reportError(error, {
      json: argv.includes('--json'),
      verbose: argv.includes('-v') || argv.includes('--verbose'),
    });
    return;
  }
  if (pending) await pending;
}

// A reader that stops early (`mmogit recall --json | head`) closes our stdout: that is the reader's choice, not
// an error of ours, so we stop quietly with the exit code so far (as a POSIX tool stops on SIGPIPE) instead
// of an unhandled 'error' event and its stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});

await main(process.argv.slice(2));
