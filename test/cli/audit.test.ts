// The CLI against docs/cli.md, as a user meets it: bad input is one typed line with the documented exit code
// (one JSON document with `--json`, no stack trace) and is refused before the daemon is asked. A fake daemon
// (a real IPC server on the config dir's daemon.sock, answering canned results) records what reaches it, so
// "refused before the daemon" is checked, not assumed; no tor runs here.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { socketPath } from '../../src/agent/daemon.js';
import { type IpcServer, startIpcServer } from '../../src/agent/ipc.js';
import { AgentKey } from '../../src/identity/keys.js';
import { type CliRun, runCli } from '../helpers/cli.js';

let root: string;
let home: string;
const peer = AgentKey.random().onion;

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
      send: record('send', { id: '0'.repeat(32), status: 'queued', thread: '0'.repeat(32) }),
    });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    calls.length = 0;
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
  it('no command: one hint, not two', async () => {
    const r = await runCli(['--json']);
    expectRefusal(r, 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage);
    expect(r.stderr.match(/--help/g)).toHaveLength(1);
  });
});
