// The CLI end to end on the private Tor network: `tor start --a2a` serves A2A on the agent's onion, another
// agent's `mmogit a2a card` / `a2a send` reach it through tor, and `a2a inbox` shows what arrived (from whom:
// the CLI signs with its agent key).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';

let root: string;
const home = (n: string) => join(root, n);
const onions: Record<string, string> = {};

beforeAll(async () => {
  const network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-a2a-cli-'));
  for (const n of ['server', 'caller', 'idle']) {
    onions[n] = (await runCli(['init', '--json', '--config-dir', home(n)])).json<{ onion: string }>().onion;
  }
  const [server, caller] = await Promise.all(
    [
      ['server', ['--a2a']],
      ['caller', []],
    ].map(([n, extra]) =>
      runCli(
        [
          'tor',
          'start',
          '--network',
          network,
          '--json',
          '--config-dir',
          home(n as string),
          ...(extra as string[]),
        ],
        {
          timeoutMs: 150_000,
        },
      ),
    ),
  );
  expect(server!.exitCode, server!.stderr).toBe(0);
  expect(caller!.exitCode, caller!.stderr).toBe(0);
  expect(server!.json()).toMatchObject({ onion: onions.server, a2a: `http://${onions.server}` });
}, 300_000);

afterAll(async () => {
  for (const n of ['server', 'caller'])
    await runCli(['tor', 'stop', '--config-dir', home(n)]).catch(() => {});
  await rm(root, { recursive: true, force: true });
}, 120_000);

describe('mmogit a2a', () => {
  it('card: fetches the agent card through tor, verified against the onion', async () => {
    const r = await runCli(['a2a', 'card', onions.server!, '--json', '--config-dir', home('caller')], {
      timeoutMs: 120_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({
      url: `http://${onions.server}`,
      verified: true,
      card: { supportedInterfaces: [{ protocolBinding: 'JSONRPC' }] },
    });
  }, 150_000);

  it('send (argument and --stdin): the message is accepted and kept although no program answers', async () => {
    const r = await runCli(
      ['a2a', 'send', onions.server!, 'hello from the CLI', '--json', '--config-dir', home('caller')],
      {
        timeoutMs: 150_000,
      },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ kind: 'task', verified: true, state: 'TASK_STATE_WORKING' });
    const piped = await runCli(
      [
        'a2a',
        'send',
        `http://${onions.server}`,
        '--stdin',
        '--data',
        '{"n":1}',
        '--json',
        '--config-dir',
        home('caller'),
      ],
      {
        timeoutMs: 150_000,
        input: 'from stdin',
      },
    );
    expect(piped.exitCode, piped.stderr).toBe(0);
    const inbox = await runCli(['a2a', 'inbox', '--json', '--config-dir', home('server')]);
    const got =
      inbox.json<{ text: string; data: unknown[]; verified: boolean; from: string | null; via: string }[]>();
    // The CLI signs what it sends with its agent key: the receiver knows who sent it.
    expect(got.map((m) => [m.text, m.verified, m.from, m.via])).toEqual([
      ['hello from the CLI', true, onions.caller, 'a2a'],
      ['from stdin', true, onions.caller, 'a2a'],
    ]);
    expect(got[1]?.data).toEqual([{ n: 1 }]);
  }, 300_000);

  it('refuses bad targets and a stopped daemon with typed errors', async () => {
    const bad = await runCli(['a2a', 'card', 'not-an-onion', '--config-dir', home('caller')]);
    expect(bad.exitCode).toBe(EXIT_CODES.usage);
    const scheme = await runCli(['a2a', 'card', 'ftp://example.org', '--config-dir', home('caller')]);
    expect(scheme.exitCode).toBe(EXIT_CODES.usage);
    const idle = await runCli(['a2a', 'send', onions.server!, 'hi', '--config-dir', home('idle')]);
    expect(idle.exitCode).toBe(EXIT_CODES.daemon);
    expect(idle.stderr).toContain('ERR_DAEMON_NOT_RUNNING');
  }, 60_000);
});
