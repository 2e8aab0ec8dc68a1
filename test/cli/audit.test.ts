// The CLI against docs/cli.md, as a user meets it: bad input is one typed line with the documented exit code
// (one JSON document with `--json`, no stack trace) and is refused before the daemon is asked. A fake daemon
// (a real IPC server on the config dir's daemon.sock, answering canned results) records what reaches it, so
// "refused before the daemon" is checked, not assumed; no tor runs here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommandHelp } from '../../cli/_help-json.js';
import { BOUNDS } from '../../cli/_numbers.js';
import { DAEMON_OPTIONS } from '../../cli/args/network.js';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { socketPath } from '../../src/agent/daemon.js';
import { type IpcServer, ipcCall, startIpcServer } from '../../src/agent/ipc.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MAX_HOPS, MIN_HOPS } from '../../src/mesh/_wire.js';
import { peerIdFromOnion } from '../../src/transport/addr.js';
import { type CliRun, MMOGIT_BIN, runCli } from '../helpers/cli.js';

let root: string;
let home: string;
const peer = AgentKey.random().onion;
/** The one peer the fake daemon's sync succeeds with. */
const synced = AgentKey.random().onion;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-audit-'));
  home = join(root, 'home');
  expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
  await writeFile(join(root, 'a-file'), 'not a directory\n');
  await mkdir(join(root, 'a-dir'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const cli = (args: string[], options: { input?: string } = {}) =>
  runCli([...args, '--config-dir', home], options);

/** A usage-style failure: its code in the one JSON document, its exit code, one stderr line, no stack. */
function expectRefusal(r: CliRun, code: string, exit: number): void {
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit, stderr: expect.stringContaining(code) });
  expect(r.json<{ error: { code: string } }>().error.code).toBe(code);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('a flag that takes one value, given twice, is a usage error (not a TypeError)', () => {
  it.each([
    ['send --file', ['send', peer, '--file', 'a', '--file', 'b']],
    ['inbox --from', ['inbox', '--from', peer, '--from', peer]],
    ['recall --author', ['recall', '--author', peer, '--author', peer]],
    ['recall -t', ['recall', '-t', 'learning', '-t', 'task']],
    ['remember --type', ['remember', 'x', '--type', 'learning', '--type', 'task']],
    ['tor start --metrics', ['tor', 'start', '--metrics', '1', '--metrics', '2']],
    ['--config-dir', ['post', 'hi', '--config-dir', home]],
  ])('%s', async (_what, args) => {
    const r = await cli([...args, '--json']);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.stderr).toMatch(/--[a-z-]+ is given more than once/);
  });

  it('a numeric flag keeps its own code (--confidence: ERR_INVALID_MEMORY)', async () => {
    const r = await cli([
      'remember',
      'x',
      '-t',
      'learning',
      '--confidence',
      '0.1',
      '--confidence',
      '0.2',
      '--json',
    ]);
    expectRefusal(r, 'ERR_INVALID_MEMORY', EXIT_CODES.usage);
  });
});

describe('with a daemon answering (a fake one that records its calls)', () => {
  let server: IpcServer;
  const calls: { method: string; params: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    const record = (method: string, answer: unknown) => async (params: Record<string, unknown>) => {
      calls.push({ method, params });
      return answer;
    };
    server = await startIpcServer(socketPath(home), {
      ping: record('ping', { pid: process.pid }),
      status: record('status', { running: true, socksPort: 9 }),
      send: record('send', { id: '0'.repeat(32), status: 'queued', thread: '0'.repeat(32) }),
      outbox: record('outbox', []),
      // Sync succeeds with `synced` only: every other peer fails, with the error a real daemon would report.
      sync: async (params: Record<string, unknown>) => {
        calls.push({ method: 'sync', params });
        return (params.peers as string[]).map((p) =>
          p === synced
            ? { peer: p, sent: 1, received: 2, head: 'c'.repeat(40), ms: 5 }
            : {
                peer: p,
                sent: 0,
                received: 0,
                head: null,
                ms: 7,
                error: { code: 'ERR_PEER_UNREACHABLE', message: `could not reach ${p}` },
              },
        );
      },
    });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const id = 'ab'.repeat(16);
  it.each([
    [
      'send --type file (files go with --file)',
      ['send', peer, 'hi', '--type', 'file'],
      'ERR_INVALID_ARGUMENT',
    ],
    ['send --type with a space', ['send', peer, 'hi', '--type', 'bad type'], 'ERR_INVALID_ARGUMENT'],
    ['send --thread that is no id', ['send', peer, 'hi', '--thread', 'xyz'], 'ERR_INVALID_ARGUMENT'],
    ['send --reply-to that is no id', ['send', peer, 'hi', '--reply-to', 'xyz'], 'ERR_INVALID_ARGUMENT'],
    ['send --meta with a bad key', ['send', peer, 'hi', '--meta', 'bad key=1'], 'ERR_INVALID_ARGUMENT'],
    [
      'send with 33 --meta',
      ['send', peer, 'hi', ...Array.from({ length: 33 }, (_, i) => ['--meta', `k${i}=v`]).flat()],
      'ERR_INVALID_ARGUMENT',
    ],
    ['send TEXT --background (no --file)', ['send', peer, 'hi', '--background'], 'ERR_INVALID_ARGUMENT'],
    [
      'send TEXT --max-file-bytes (no --file)',
      ['send', peer, 'hi', '--max-file-bytes', '5'],
      'ERR_INVALID_ARGUMENT',
    ],
    ['send --file with an empty path', ['send', peer, '--file', ''], 'ERR_INVALID_ARGUMENT'],
    [
      'tor advertise --services with a bad name',
      ['tor', 'advertise', '--services', 'ok,Bad!'],
      'ERR_INVALID_ARGUMENT',
    ],
    ['tor discover with upper case', ['tor', 'discover', 'Memory_Sync'], 'ERR_INVALID_ARGUMENT'],
    ['a2a card ftp://', ['a2a', 'card', 'ftp://example.com/'], 'ERR_INVALID_ARGUMENT'],
    ['a2a card of a bad onion', ['a2a', 'card', 'abc.onion'], 'ERR_INVALID_ONION'],
    ['a2a send to a bare word', ['a2a', 'send', 'nowhere', 'hi'], 'ERR_INVALID_ONION'],
    ['a2a send TEXT --stdin', ['a2a', 'send', peer, 'hi', '--stdin'], 'ERR_INVALID_ARGUMENT'],
    ['outbox list ID (list takes none)', ['outbox', 'list', id], 'ERR_INVALID_ARGUMENT'],
    ['outbox retry with no id', ['outbox', 'retry'], 'ERR_INVALID_ARGUMENT'],
  ])('%s: refused, and the daemon is not asked', async (_what, args, code) => {
    const r = await cli([...args, '--json'], { input: 'from stdin' });
    expectRefusal(r, code, EXIT_CODES.usage);
    expect(calls).toEqual([]);
  });

  it('send with a good --type, --thread and --reply-to reaches the daemon with them', async () => {
    const r = await cli([
      'send',
      peer,
      'hi',
      '--type',
      'task-proposal',
      '--thread',
      id,
      '--reply-to',
      id,
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(calls).toEqual([
      {
        method: 'send',
        params: expect.objectContaining({ text: 'hi', type: 'task-proposal', thread: id, replyTo: id }),
      },
    ]);
  });

  it('sync failing with every peer: ERR_SYNC (exit 5), each failure in details, one stderr line', async () => {
    const [a, b] = [AgentKey.random().onion, AgentKey.random().onion];
    const r = await cli(['sync', a, b, '--json']);
    expectRefusal(r, 'ERR_SYNC', EXIT_CODES.network);
    expect(r.json()).toEqual({
      error: {
        name: 'MmogitError',
        code: 'ERR_SYNC',
        message: expect.stringContaining('sync failed with all 2 peers'),
        details: {
          failures: [a, b].map((p) => ({
            peer: p,
            code: 'ERR_PEER_UNREACHABLE',
            message: `could not reach ${p}`,
          })),
        },
      },
    });
    // Without --json: nothing on stdout, the one line on stderr names the peer and its failure.
    const human = await cli(['sync', a]);
    expect({ exit: human.exitCode, stdout: human.stdout }).toEqual({ exit: EXIT_CODES.network, stdout: '' });
    expect(human.stderr).toBe(
      `mmogit: sync failed with ${a}: could not reach ${a} (ERR_PEER_UNREACHABLE) [ERR_SYNC]\n`,
    );
  });

  it("sync with one peer of two failing: exit 0, the failure in that peer's result", async () => {
    const other = AgentKey.random().onion;
    const r = await cli(['sync', synced, other, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toEqual([
      { peer: synced, sent: 1, received: 2, head: 'c'.repeat(40), ms: 5 },
      expect.objectContaining({
        peer: other,
        error: expect.objectContaining({ code: 'ERR_PEER_UNREACHABLE' }),
      }),
    ]);
  });

  it('send --meta k=v TEXT keeps TEXT as the message (one value per --meta)', async () => {
    const r = await cli(['send', peer, '--meta', 'a=1', '--meta', 'b=2', 'hello', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(calls).toEqual([
      { method: 'send', params: expect.objectContaining({ text: 'hello', meta: { a: '1', b: '2' } }) },
    ]);
  });
});

describe('usage errors name the fix once', () => {
  it('a mistyped command says it is unknown, with the suggestion', async () => {
    const r = await runCli(['tor', 'statu', '--json']);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.stderr).toContain('unknown command; did you mean status?');
  });

  it('--verbose shows the stack of a usage error as -v does', async () => {
    for (const flag of ['-v', '--verbose']) {
      const r = await runCli(['frobnicate', flag]);
      expect(r.exitCode).toBe(EXIT_CODES.usage);
      expect(r.stderr, flag).toMatch(/\n\s+at /);
    }
  });

  it('no command: one hint, not two', async () => {
    const r = await runCli(['--json']);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.stderr.match(/--help/g)).toHaveLength(1);
  });
});

describe('config dir faults are exit 3 with their own code, from every command', () => {
  it.each([
    ['tor address', ['tor', 'address']],
    ['post', ['post', 'hi']],
    ['tor start', ['tor', 'start']],
  ])('%s under a path that runs through a file: ERR_CONFIG_INVALID', async (_what, args) => {
    const r = await runCli([...args, '--json', '--config-dir', join(root, 'a-file', 'sub')]);
    expectRefusal(r, 'ERR_CONFIG_INVALID', EXIT_CODES.config);
  });

  it.each([
    ['inbox', ['inbox']],
    ['outbox', ['outbox']],
    ['send', ['send', peer, 'hi']],
    ['sync', ['sync']],
  ])('%s with a mistyped --config-dir: ERR_CONFIG_DIR_MISSING, not "run tor start"', async (_what, args) => {
    const r = await runCli([...args, '--json', '--config-dir', join(root, 'typo')]);
    expectRefusal(r, 'ERR_CONFIG_DIR_MISSING', EXIT_CODES.config);
  });

  it('inbox with a config dir that is a file: ERR_CONFIG_INVALID', async () => {
    const r = await runCli(['inbox', '--json', '--config-dir', join(root, 'a-file')]);
    expectRefusal(r, 'ERR_CONFIG_INVALID', EXIT_CODES.config);
  });

  it('contacts add with no config dir: ERR_CONFIG_DIR_MISSING, and creates none', async () => {
    const dir = join(root, 'no-such-dir');
    const r = await runCli(['contacts', 'add', 'bob', peer, '--json', '--config-dir', dir]);
    expectRefusal(r, 'ERR_CONFIG_DIR_MISSING', EXIT_CODES.config);
    expect(existsSync(dir)).toBe(false);
  });

  it.each([
    ['add', ['contacts', 'add', 'bob', peer]],
    ['list', ['contacts', 'list']],
  ])('contacts %s with a config dir that is a file: ERR_CONFIG_INVALID', async (_what, args) => {
    const r = await runCli([...args, '--json', '--config-dir', join(root, 'a-file')]);
    expectRefusal(r, 'ERR_CONFIG_INVALID', EXIT_CODES.config);
  });
});

describe('tor start refuses what it can check before it spawns a daemon', () => {
  it('a missing config dir: ERR_CONFIG_DIR_MISSING (was ERR_INTERNAL, from opening daemon.log)', async () => {
    const dir = join(root, 'no-start-dir');
    expectRefusal(
      await runCli(['tor', 'start', '--json', '--config-dir', dir]),
      'ERR_CONFIG_DIR_MISSING',
      EXIT_CODES.config,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('no identity: ERR_IDENTITY_MISSING, exit 3 (was ERR_TOR_START_FAILED, exit 4), and no daemon ran', async () => {
    const dir = await mkdtemp(join(root, 'empty-'));
    expectRefusal(
      await runCli(['tor', 'start', '--json', '--config-dir', dir]),
      'ERR_IDENTITY_MISSING',
      EXIT_CODES.config,
    );
    expect(existsSync(join(dir, 'daemon.log'))).toBe(false);
  });

  it.each([
    [
      'an /ip4 --bootstrap',
      ['--bootstrap', '/ip4/127.0.0.1/tcp/4001'],
      'ERR_INVALID_MULTIADDR',
      EXIT_CODES.usage,
    ],
    [
      'a --bootstrap that is no multiaddr',
      ['--bootstrap', 'garbage'],
      'ERR_INVALID_MULTIADDR',
      EXIT_CODES.usage,
    ],
    [
      'an /onion3 --bootstrap without /p2p',
      ['--bootstrap', `/onion3/${peer.slice(0, 56)}:4001`],
      'ERR_INVALID_MULTIADDR',
      EXIT_CODES.usage,
    ],
    [
      '--tor-password without --tor-control',
      ['--tor-password', 'x'],
      'ERR_INVALID_ARGUMENT',
      EXIT_CODES.usage,
    ],
    [
      '--use-bridges with --tor-control',
      ['--use-bridges', '--tor-control', '/nonexistent/control.sock'],
      'ERR_INVALID_ARGUMENT',
      EXIT_CODES.usage,
    ],
    [
      'a --network dir with no network.json',
      ['--network', '<root>/a-dir'],
      'ERR_NETWORK_CONFIG',
      EXIT_CODES.config,
    ],
  ])('%s', async (_what, flags, code, exit) => {
    const dir = await mkdtemp(join(root, 'start-'));
    expect((await runCli(['init', '--config-dir', dir])).exitCode).toBe(0);
    const args = flags.map((f) => f.replace('<root>', root)); // root exists only once the tests run
    expectRefusal(await runCli(['tor', 'start', ...args, '--json', '--config-dir', dir]), code, exit);
    expect(existsSync(join(dir, 'daemon.log'))).toBe(false); // nothing was spawned
  });
});

describe('tor start interrupted while the daemon starts', () => {
  // A "tor control port" that accepts and never answers: the daemon attaches to it and waits, so the start
  // stays pending as long as the test needs, with no tor.
  let control: Server;
  let controlPath: string;
  beforeAll(async () => {
    controlPath = join(root, 'silent-control.sock');
    control = createServer((c) => c.on('data', () => {}));
    await new Promise<void>((r) => control.listen(controlPath, r));
  });
  afterAll(async () => {
    await new Promise((r) => control.close(r));
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s stops the daemon it spawned, exit 130 (ERR_ABORTED)',
    async (signal) => {
      const dir = await mkdtemp(join(root, 'interrupted-'));
      expect((await runCli(['init', '--config-dir', dir])).exitCode).toBe(0);
      // A well-formed --bootstrap passes the checks above (the start gets as far as the daemon).
      const sid = AgentKey.random().onion.slice(0, 56);
      const bootstrap = `/onion3/${sid}:4001/p2p/${peerIdFromOnion(sid).toString()}`;
      const child = spawn(
        process.execPath,
        [
          MMOGIT_BIN,
          'tor',
          'start',
          '--tor-control',
          controlPath,
          '--bootstrap',
          bootstrap,
          '--config-dir',
          dir,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      // Wait until the spawned daemon serves its socket (its start is then pending on the silent control port).
      let daemonPid: number | undefined;
      for (let i = 0; i < 600 && daemonPid === undefined; i++) {
        daemonPid = await ipcCall<{ pid: number }>(socketPath(dir), 'ping', {}, { timeoutMs: 2_000 }).then(
          (p) => p.pid,
          () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
        );
      }
      expect(daemonPid, stderr).toBeTypeOf('number');
      child.kill(signal);
      expect(await exited).toBe(EXIT_CODES.aborted);
      expect(stderr).toContain('ERR_ABORTED');
      expect(() => process.kill(daemonPid as number, 0)).toThrow(); // the daemon is gone
    },
    120_000,
  );
});

describe('init', () => {
  it('--from-seed-file with an empty path is a usage error naming the flag', async () => {
    const dir = join(root, 'init-empty-path');
    const r = await runCli(['init', '--from-seed-file', '', '--json', '--config-dir', dir]);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.stderr).toContain('--from-seed-file');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('mesh numbers go through the one numeric parser, before anything starts', () => {
  // Every case names a TCP route (relay: --no-tor --listen; socks: a relay @HOST:PORT), so even a regression
  // would start no tor: the point is that nothing starts at all.
  const relay = ['mesh', 'relay', '--no-tor', '--listen', '127.0.0.1:0'];
  const socks = ['mesh', 'socks', '--relay', `${peer}@127.0.0.1:9`];
  it.each([
    ['relay --interval in hex', [...relay, '--interval', '0x10']],
    ['relay --interval 5 (under 10 ms)', [...relay, '--interval', '5']],
    ['relay --timeout -1', [...relay, '--timeout', '-1']],
    ['relay --timeout abc', [...relay, '--timeout', 'abc']],
    ['socks --hops 9', [...socks, '--hops', '9']],
    ['socks --hops 2.5', [...socks, '--hops', '2.5']],
    ['socks --port 70000', [...socks, '--port', '70000']],
    ['socks --port 1e3', [...socks, '--port', '1e3']],
    ['socks --interval NaN', [...socks, '--interval', 'NaN']],
    ['socks --timeout 0', [...socks, '--timeout', '0']],
  ])('%s: ERR_INVALID_ARGUMENT, exit 2', async (_what, args) => {
    const dir = await mkdtemp(join(root, 'mesh-'));
    expect((await runCli(['init', '--config-dir', dir])).exitCode).toBe(0);
    const r = await runCli([...args, '--json', '--config-dir', dir], { timeoutMs: 30_000 });
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(existsSync(join(dir, 'mesh.json'))).toBe(false);
  });

  it('--hops bounds are the mesh own', () => {
    expect(BOUNDS.hops).toEqual({ min: MIN_HOPS, max: MAX_HOPS });
  });
});

describe('documented shapes and help', () => {
  it('tor status --json with no daemon has every key docs/cli.md lists (health and metrics null)', async () => {
    const r = await cli(['tor', 'status', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toEqual({
      running: false,
      onion: expect.stringMatching(/^[a-z2-7]{56}\.onion$/),
      bootstrap: 0,
      socksPort: null,
      controlPort: null,
      onionPort: null,
      pid: null,
      health: null,
      metrics: null,
    });
  });

  it('mesh stop, testnet status and testnet down with nothing running: the documented shapes', async () => {
    const dir = join(root, 'no-testnet');
    const shapes = await Promise.all(
      [
        ['mesh', 'stop'],
        ['testnet', 'status', '--dir', dir],
        ['testnet', 'down', '--dir', dir],
      ].map(async (a) => {
        const r = await cli([...a, '--json']);
        expect(r.exitCode, r.stderr).toBe(0);
        return r.json();
      }),
    );
    expect(shapes).toEqual([
      { stopped: false, running: false },
      { dir, running: false, processes: [] },
      { stopped: 0, agents: 0 },
    ]);
  });

  // Every flag of the daemon's one table (cli/args/network.ts), so a flag added there is refused here too.
  it.each(
    Object.entries(DAEMON_OPTIONS).map(([flag, option]): [string, string[]] =>
      option.type === 'boolean'
        ? 'default' in option && option.default
          ? [`--no-${flag}`, [`--no-${flag}`]]
          : [`--${flag}`, [`--${flag}`]]
        : [`--${flag}`, [`--${flag}`, flag === 'network' ? '/tmp' : 'x']],
    ),
  )('daemon log %s (a flag of the internal daemon) is refused, not ignored', async (what, flags) => {
    const r = await cli(['daemon', 'log', ...flags, '--json']);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.json<{ error: { details: { flag: string } } }>().error.details.flag).toBe(what.slice(2));
  });

  it('tor connect --help names its argument <peer>, as docs/cli.md does', async () => {
    const r = await cli(['tor', 'connect', '--help']);
    expect(r.stdout).toContain('mmogit tor connect <peer>');
  });

  it('daemon log --help lists only its own flags', async () => {
    const r = await cli(['daemon', 'log', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('--lines');
    expect(r.stdout).not.toMatch(/--tor-control|--network|--policy/);
  });
});

describe("--help --json: the command described in one JSON document, from yargs' own tables", () => {
  /** Runs `args --help --json`: exit 0, nothing on stderr, one document on stdout. */
  async function helpOf(args: string[], flag = '--help'): Promise<CommandHelp> {
    const r = await cli([...args, flag, '--json']);
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    return r.json<CommandHelp>();
  }
  const named = (help: CommandHelp, name: string) => help.options.find((o) => o.name === name);

  it('send: usage, description, typed positionals (required or not), options with types and aliases', async () => {
    const help = await helpOf(['send']);
    expect(help).toMatchObject({
      command: 'mmogit send',
      usage: 'mmogit send <peer> [text]',
      description: expect.stringContaining('post-quantum'),
      positionals: [
        { name: 'peer', type: 'string', required: true, description: 'onion or contact alias' },
        { name: 'text', type: 'string', required: false },
      ],
      commands: [],
    });
    expect(named(help, 'meta')).toEqual({
      name: 'meta',
      type: 'string',
      array: true,
      description: 'metadata key=value (repeatable)',
    });
    expect(named(help, 'stdin')?.type).toBe('boolean');
    // The global flags are the command's too; positionals are not listed again as options.
    expect(named(help, 'verbose')).toMatchObject({ type: 'boolean', aliases: ['v'] });
    expect(named(help, 'peer')).toBeUndefined();
  });

  it('defaults, choices and required flags; -h is --help', async () => {
    const [advertise, start, card] = await Promise.all([
      helpOf(['tor', 'advertise'], '-h'),
      helpOf(['tor', 'start']),
      helpOf(['a2a', 'card']),
    ]);
    expect(named(advertise, 'ttl')).toMatchObject({ type: 'string', default: '6h' });
    expect(named(advertise, 'services')).toMatchObject({ type: 'string', required: true });
    expect(named(start, 'policy')).toMatchObject({
      type: 'string',
      choices: expect.arrayContaining(['tor-only']),
    });
    expect(named(card, 'verify')).toMatchObject({ type: 'boolean', default: true });
  });

  it('a command with subcommands lists them; hidden commands and hidden flags are left out', async () => {
    const [top, tor, log] = await Promise.all([helpOf([]), helpOf(['tor']), helpOf(['daemon', 'log'])]);
    expect(top).toMatchObject({ command: 'mmogit', usage: 'mmogit <command> [options]' });
    expect(top.commands.map((c) => c.name)).toEqual(expect.arrayContaining(['init', 'send', 'tor', 'sync']));
    expect(top.commands.map((c) => c.name)).not.toContain('daemon');
    expect(tor.commands).toContainEqual({
      name: 'connect',
      usage: 'mmogit tor connect <peer>',
      description: expect.any(String),
    });
    expect(log.command).toBe('mmogit daemon log');
    expect(log.options.map((o) => o.name)).toEqual(expect.arrayContaining(['follow', 'lines']));
    expect(log.options.map((o) => o.name)).not.toEqual(expect.arrayContaining(['network']));
    expect(named(log, 'lines')).toMatchObject({ type: 'string', aliases: ['n'] });
  });

  it('without --json, --help is still the text help', async () => {
    const r = await cli(['send', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('mmogit send <peer> [text]');
    expect(() => JSON.parse(r.stdout)).toThrow();
  });
});

describe('mcp start-up errors write no frame', () => {
  it('--network without --start: ERR_INVALID_ARGUMENT, exit 2, stdout empty', async () => {
    const r = await cli(['mcp', '--network', join(root, 'a-dir')]);
    expect([r.exitCode, r.stdout]).toEqual([EXIT_CODES.usage, '']);
    expect(r.stderr).toContain('ERR_INVALID_ARGUMENT');
  });

  it('--start with a bad --network: ERR_NETWORK_CONFIG, exit 3, and no daemon spawned', async () => {
    const dir = await mkdtemp(join(root, 'mcp-'));
    expect((await runCli(['init', '--config-dir', dir])).exitCode).toBe(0);
    const r = await runCli(['mcp', '--start', '--network', join(root, 'a-dir'), '--config-dir', dir]);
    expect([r.exitCode, r.stdout]).toEqual([EXIT_CODES.config, '']);
    expect(r.stderr).toContain('ERR_NETWORK_CONFIG');
    expect(existsSync(join(dir, 'daemon.log'))).toBe(false);
  });
});

describe('testnet --dir that is a file', () => {
  it.each(['up', 'status', 'down'])(
    'testnet %s: ERR_NETWORK_CONFIG, exit 3, before anything runs',
    async (sub) => {
      const r = await cli(['testnet', sub, '--dir', join(root, 'a-file'), '--json']);
      expectRefusal(r, 'ERR_NETWORK_CONFIG', EXIT_CODES.config);
    },
  );
});
