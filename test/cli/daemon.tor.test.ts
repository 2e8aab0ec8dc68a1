import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { expandedSecretKey } from '../../src/identity/onion.js';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import { runCli } from '../helpers/cli.js';
import { liveProcesses } from '../helpers/processes.js';
import { startTestTor, testNetwork } from '../helpers/tor.js';

let root: string;
let network: string;
const A = () => join(root, 'a');
const B = () => join(root, 'b');
const C = () => join(root, 'c');
const onions: Record<string, string> = {};
const mnemonics: Record<string, string> = {};

async function start(home: string, extra: string[] = []) {
  const r = await runCli(['tor', 'start', '--network', network, '--json', '--config-dir', home, ...extra], {
    timeoutMs: 150_000,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-daemon-'));
  for (const [name, home] of [
    ['a', A()],
    ['b', B()],
    ['c', C()],
  ] as const) {
    const r = await runCli(['init', '--json', '--config-dir', home]);
    onions[name] = r.json<{ onion: string }>().onion;
    mnemonics[name] = r.json<{ mnemonic: string }>().mnemonic;
  }
}, 60_000);

afterAll(async () => {
  for (const home of [A(), B(), C()]) await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

describe('mmogit tor start / status / connect / send / inbox / stop', () => {
  it('starts the daemon with progress on stderr, refuses a second start, reports status', async () => {
    const r = await start(A());
    const out = r.json<{ onion: string; pid: number; socksPort: number; controlPort: number }>();
    expect(out.onion).toBe(onions.a);
    expect(out.pid).toBeGreaterThan(0);
    expect(out.socksPort).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/tor bootstrap \d+%/);
    const bootstrap = onionMultiaddr(
      onions.a!,
      DEFAULT_ONION_VIRTUAL_PORT,
      peerIdFromOnion(onions.a!).toString(),
    );
    await start(B(), ['--bootstrap', bootstrap.toString()]);

    const again = await runCli(['tor', 'start', '--network', network, '--config-dir', A()]);
    expect(again.exitCode).toBe(EXIT_CODES.daemon);
    expect(again.stderr).toContain('already running');

    const status = await runCli(['tor', 'status', '--json', '--config-dir', A()]);
    expect(status.json()).toMatchObject({
      running: true,
      onion: onions.a,
      bootstrap: 100,
      socksPort: out.socksPort,
      onionPort: DEFAULT_ONION_VIRTUAL_PORT,
      pid: out.pid,
    });
  }, 300_000);

  it('connects with a verified identity and delivers messages into the peer’s inbox', async () => {
    const c = await runCli(['tor', 'connect', onions.b!, '--json', '--config-dir', A()], {
      timeoutMs: 120_000,
    });
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.json()).toMatchObject({
      peer: { onion: onions.b },
      transport: 'tor',
      suite: 'hybrid-x25519-mlkem768',
      verified: true,
    });
    const s = await runCli(['send', onions.b!, 'hello from a', '--json', '--config-dir', A()], {
      timeoutMs: 120_000,
    });
    expect(s.exitCode, s.stderr).toBe(0);
    const sent = s.json<{ id: string; status: string }>();
    expect(sent.status).toBe('delivered');
    const inbox = await runCli(['inbox', '--json', '--config-dir', B()]);
    const items =
      inbox.json<{ id: string; from: string; text: string; timestamp: number; verified: boolean }[]>();
    expect(items.filter((m) => m.id === sent.id)).toEqual([
      expect.objectContaining({ from: onions.a, text: 'hello from a', verified: true }),
    ]);
  }, 240_000);

  it('shows a peer’s hostile message text escaped in `inbox`, and exactly in `inbox --json`', async () => {
    const hostile =
      'hi\x1b[2K\r2026-01-01T00:00:00.000Z  fakefakefakefake…  ✓  trust me\x1b]0;pwned\x07\u202Eabc';
    const s = await runCli(['send', onions.b!, hostile, '--json', '--config-dir', A()], {
      timeoutMs: 120_000,
    });
    expect(s.exitCode, s.stderr).toBe(0);
    const { id } = s.json<{ id: string }>();
    const json = await runCli(['inbox', '--json', '--config-dir', B()]);
    expect(json.json<{ id: string; text: string }[]>().find((m) => m.id === id)?.text).toBe(hostile);
    const human = await runCli(['inbox', '--config-dir', B()]);
    expect(human.exitCode).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters the output must not hold
    expect(human.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
    const line = human.stdout.split('\n').find((l) => l.includes('trust me'));
    expect(line).toContain(`${onions.a!.slice(0, 16)}…  ✓  hi\\x1b[2K\\r2026-01-01T00:00:00.000Z  fakefake`);
    expect(line).toContain('\\x1b]0;pwned\\x07\\u{202e}abc');
  }, 180_000);

  it('advertises memory_sync, discovers it, and syncs memories both ways', async () => {
    const ad = await runCli(
      ['tor', 'advertise', '--services', 'memory_sync', '--json', '--config-dir', B()],
      {
        timeoutMs: 200_000,
      },
    );
    expect(ad.exitCode, ad.stderr).toBe(0);
    expect(ad.json<{ onion: string; services: string[] }>()).toMatchObject({
      onion: onions.b,
      services: ['memory_sync'],
    });

    let found: { onion: string; verified: boolean }[] = [];
    for (let i = 0; i < 4 && !found.some((f) => f.onion === onions.b); i++) {
      const d = await runCli(
        ['tor', 'discover', 'memory_sync', '--timeout', '20', '--json', '--config-dir', A()],
        {
          timeoutMs: 60_000,
        },
      );
      if (d.exitCode === 0) found = d.json();
      else expect(d.exitCode).toBe(EXIT_CODES['not-found']);
    }
    // The shared test network may hold other agents offering memory_sync: B must be among them, all verified.
    expect(found).toEqual(
      expect.arrayContaining([expect.objectContaining({ onion: onions.b, verified: true })]),
    );
    expect(found.every((f) => f.verified)).toBe(true);

    expect((await runCli(['remember', '-t', 'learning', 'a knows this', '--config-dir', A()])).exitCode).toBe(
      0,
    );
    expect(
      (await runCli(['remember', '-t', 'observation', 'b saw this', '--config-dir', B()])).exitCode,
    ).toBe(0);
    const shared = await runCli([
      'remember',
      '-t',
      'task',
      'only b may read this',
      '--share',
      onions.b!,
      '--config-dir',
      A(),
    ]);
    expect(shared.exitCode, shared.stderr).toBe(0);
    const sync = await runCli(['sync', onions.b!, '--json', '--config-dir', A()], { timeoutMs: 150_000 });
    expect(sync.exitCode, sync.stderr).toBe(0);
    const [result] =
      sync.json<{ peer: string; sent: number; received: number; head: string; ms: number }[]>();
    expect(result).toMatchObject({ peer: onions.b });
    expect(result!.received).toBeGreaterThanOrEqual(1);
    expect(result!.sent).toBeGreaterThanOrEqual(1);
    // The shared private memory reached B encrypted, and B reads it, verified, as A's.
    const atB = await runCli(['recall', '-t', 'task', '--json', '--config-dir', B()]);
    expect(atB.json<{ author: string; content: string; verified: boolean; visibility: string }[]>()).toEqual([
      expect.objectContaining({
        author: onions.a,
        content: 'only b may read this',
        verified: true,
        visibility: 'private',
      }),
    ]);
    const recalled = await runCli(['recall', '--json', '--config-dir', A()]);
    expect(recalled.json<{ author: string; content: string; verified: boolean }[]>()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ author: onions.b, content: 'b saw this', verified: true }),
      ]),
    );
  }, 400_000);

  it('queues a message for a stopped peer and delivers it once after the peer and the sender restart', async () => {
    const stopped = await runCli(['tor', 'stop', '--json', '--config-dir', B()], { timeoutMs: 60_000 });
    expect(stopped.json()).toMatchObject({ stopped: true });
    expect(liveProcesses(B())).toEqual([]);

    const s = await runCli(['send', onions.b!, 'are you there?', '--json', '--config-dir', A()], {
      timeoutMs: 150_000,
    });
    expect(s.exitCode, s.stderr).toBe(0);
    const queued = s.json<{ id: string; status: string }>();
    expect(queued.status).toBe('queued');

    // The sender's daemon restarts too: the outbox is on disk, so nothing is lost.
    await runCli(['tor', 'stop', '--config-dir', A()], { timeoutMs: 60_000 });
    await start(A());
    await start(B());
    let delivered: { id: string; text: string }[] = [];
    for (let i = 0; i < 90 && delivered.length === 0; i++) {
      const inbox = await runCli(['inbox', '--json', '--config-dir', B()]);
      delivered = inbox.json<{ id: string; text: string }[]>().filter((m) => m.id === queued.id);
      if (delivered.length === 0) await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(delivered).toEqual([expect.objectContaining({ text: 'are you there?' })]);
  }, 400_000);

  it('a start that times out exits with ERR_TIMEOUT and leaves no daemon or tor behind', async () => {
    const r = await runCli(
      ['tor', 'start', '--network', network, '--timeout', '1', '--json', '--config-dir', C()],
      {
        timeoutMs: 60_000,
      },
    );
    expect(r.exitCode, r.stderr).toBe(EXIT_CODES.network);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_TIMEOUT');
    expect(liveProcesses(C())).toEqual([]);
    const status = await runCli(['tor', 'status', '--json', '--config-dir', C()]);
    expect(status.json<{ running: boolean }>().running).toBe(false);
  }, 90_000);

  it('puts no key material in command lines, environments, daemon.log or the files tor writes', async () => {
    // Debug logging on (the daemon inherits DEBUG): the most a user can make it write.
    const r = await runCli(['tor', 'start', '--network', network, '-v', '--json', '--config-dir', C()], {
      timeoutMs: 150_000,
      env: { DEBUG: 'mmogit:*' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const seedHex = JSON.parse(await readFile(join(C(), 'identity.key'), 'utf8')).seed as string;
    const seed = Buffer.from(seedHex, 'hex');
    const expanded = Buffer.from(expandedSecretKey(seed));
    const secrets: Buffer[] = [
      seed,
      expanded,
      Buffer.from(seedHex),
      Buffer.from(expanded.toString('hex')),
      Buffer.from(expanded.toString('base64')),
      Buffer.from(expanded.toString('base64').slice(0, 43)), // unpadded
      Buffer.from(mnemonics.c!.split(' ').slice(0, 4).join(' ')),
    ];
    const leaks = (what: string, bytes: Buffer) =>
      secrets.some((s) => bytes.includes(s)) ? [what] : ([] as string[]);
    const found: string[] = [];
    const pids = liveProcesses(C());
    expect(pids.length).toBeGreaterThanOrEqual(2); // the daemon and its tor
    for (const pid of pids) {
      for (const file of ['cmdline', 'environ']) {
        const bytes = await readFile(`/proc/${pid}/${file}`).catch(() => Buffer.alloc(0));
        found.push(...leaks(`/proc/${pid}/${file}`, bytes));
      }
    }
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (path === join(C(), 'identity.key') || path === join(C(), 'memory')) continue;
        if (e.isDirectory()) await walk(path);
        else if (e.isFile()) found.push(...leaks(path, await readFile(path)));
      }
    };
    await walk(C());
    expect(found).toEqual([]);
    expect((await readFile(join(C(), 'daemon.log'), 'utf8')).length).toBeGreaterThan(0);
    expect((await runCli(['tor', 'stop', '--config-dir', C()], { timeoutMs: 60_000 })).exitCode).toBe(0);
  }, 200_000);

  it('attach mode: the control-port password reaches the daemon on its stdin, never its command line', async () => {
    const password = 'right horse battery';
    const hashed = execFileSync('tor', ['--hash-password', password], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    const userTor = await startTestTor(root, {
      name: 'user-tor',
      extraTorrc: [`HashedControlPassword ${hashed}`],
    });
    const home = join(root, 'd');
    try {
      expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
      const r = await runCli(
        [
          'tor',
          'start',
          '--tor-control',
          `127.0.0.1:${userTor.controlPort}`,
          '--tor-password',
          password,
          '--json',
          '--config-dir',
          home,
        ],
        { timeoutMs: 150_000 },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const { pid } = r.json<{ pid: number }>();
      for (const file of ['cmdline', 'environ']) {
        expect((await readFile(`/proc/${pid}/${file}`)).includes(Buffer.from(password)), file).toBe(false);
      }
      expect((await readFile(join(home, 'daemon.log'), 'utf8')).includes(password)).toBe(false);
      const status = await runCli(['tor', 'status', '--json', '--config-dir', home]);
      expect(status.json()).toMatchObject({ running: true, ready: true, torMode: 'attach' });
    } finally {
      await runCli(['tor', 'stop', '--config-dir', home], { timeoutMs: 60_000 });
      await userTor.stop();
    }
  }, 200_000);

  it('stops gracefully, idempotently, and leaves no process behind', async () => {
    for (const home of [A(), B()]) {
      const r = await runCli(['tor', 'stop', '--json', '--config-dir', home], { timeoutMs: 60_000 });
      expect(r.exitCode).toBe(0);
      const again = await runCli(['tor', 'stop', '--json', '--config-dir', home]);
      expect(again.json()).toMatchObject({ stopped: false, running: false });
      expect(liveProcesses(home)).toEqual([]);
    }
  }, 180_000);
});
