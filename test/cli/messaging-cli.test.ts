// The messaging commands' offline half, through the real binary: contacts, and the typed errors for bad input
// that need no daemon (unknown alias, alias clash, bad metadata, bad JSON body, bad cursor), each with its
// documented exit code.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { AgentKey } from '../../src/identity/keys.js';
import { runCli } from '../helpers/cli.js';

let home: string;
const bob = AgentKey.random().onion;
const carol = AgentKey.random().onion;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'mmogit-msgcli-'));
  expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});
const cli = (...args: string[]) => runCli([...args, '--config-dir', home]);

describe('mmogit contacts', () => {
  it('adds, lists and removes aliases in a 0600 file, and refuses clashes with typed errors', async () => {
    const added = await cli('contacts', 'add', 'bob', bob, '--json');
    expect(added.exitCode).toBe(0);
    expect(added.json()).toMatchObject({ alias: 'bob', onion: bob });
    expect((await cli('contacts', 'add', 'carol', carol.toUpperCase())).exitCode).toBe(0);
    expect((await stat(join(home, 'contacts.json'))).mode & 0o777).toBe(0o600);
    const list = await cli('contacts', 'list', '--json');
    expect(list.json<{ alias: string; onion: string }[]>().map((c) => [c.alias, c.onion])).toEqual([
      ['bob', bob],
      ['carol', carol],
    ]);
    // Re-adding the same pair is fine; pointing an alias elsewhere needs --replace.
    expect((await cli('contacts', 'add', 'bob', bob)).exitCode).toBe(0);
    const taken = await cli('contacts', 'add', 'bob', carol);
    expect([taken.exitCode, taken.stderr]).toEqual([
      EXIT_CODES.usage,
      expect.stringContaining('ERR_CONTACT_CLASH'),
    ]);
    expect((await cli('contacts', 'add', 'bob', carol, '--replace')).exitCode).toBe(0);
    expect((await cli('contacts', 'add', 'bob', bob, '--replace')).exitCode).toBe(0);
    // An alias that reads as an onion would shadow one: refused.
    for (const alias of [carol, carol.replace('.onion', ''), 'fake.onion']) {
      const r = await cli('contacts', 'add', alias, bob);
      expect([r.exitCode, r.stderr]).toEqual([
        EXIT_CODES.usage,
        expect.stringContaining('ERR_CONTACT_CLASH'),
      ]);
    }
    const malformed = await cli('contacts', 'add', 'Bad Alias', bob);
    expect([malformed.exitCode, malformed.stderr]).toEqual([
      EXIT_CODES.usage,
      expect.stringContaining('ERR_INVALID_ARGUMENT'),
    ]);
    const removed = await cli('contacts', 'rm', 'carol', '--json');
    expect(removed.json()).toMatchObject({ alias: 'carol', onion: carol });
    const gone = await cli('contacts', 'rm', 'carol');
    expect([gone.exitCode, gone.stderr]).toEqual([
      EXIT_CODES.usage,
      expect.stringContaining('ERR_UNKNOWN_CONTACT'),
    ]);
    // Aliases are local: the file holds nothing but names and onions.
    expect(JSON.parse(await readFile(join(home, 'contacts.json'), 'utf8'))).toEqual({
      format: 'mmogit-contacts',
      v: 1,
      contacts: [{ alias: 'bob', onion: bob, addedAt: expect.any(String) }],
    });
  });
});

describe('messaging commands: bad input fails before the daemon, with its exit code', () => {
  it.each([
    ['an unknown alias', ['send', 'nobody', 'hi'], 'ERR_UNKNOWN_CONTACT', EXIT_CODES.usage],
    ['a malformed onion', ['send', 'abc.onion', 'hi'], 'ERR_INVALID_ONION', EXIT_CODES.usage],
    [
      'metadata without =',
      ['send', bob, 'hi', '--meta', 'novalue'],
      'ERR_INVALID_ARGUMENT',
      EXIT_CODES.usage,
    ],
    [
      'a body that is not JSON',
      ['send', bob, '{nope', '--json-body'],
      'ERR_INVALID_ARGUMENT',
      EXIT_CODES.usage,
    ],
    ['an empty message', ['send', bob, ''], 'ERR_INVALID_ARGUMENT', EXIT_CODES.usage],
    ['a cursor that is not one', ['inbox', '--since', 'yesterday'], 'ERR_BAD_CURSOR', EXIT_CODES.usage],
    ['an unknown --from alias', ['inbox', '--from', 'nobody'], 'ERR_UNKNOWN_CONTACT', EXIT_CODES.usage],
    [
      'tor connect to an unknown alias',
      ['tor', 'connect', 'nobody'],
      'ERR_UNKNOWN_CONTACT',
      EXIT_CODES.usage,
    ],
  ])('%s', async (_what, args, code, exit) => {
    const r = await cli(...args, '--json');
    expect(r.exitCode).toBe(exit);
    expect(r.json<{ error: { code: string } }>().error.code).toBe(code);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('--stdin over 1 MiB is refused unread (ERR_TOO_LARGE, exit 6); --stdin with a text too is a usage error', async () => {
    const big = await runCli(['send', 'bob', '--stdin', '--json', '--config-dir', home], {
      input: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(big.exitCode).toBe(EXIT_CODES.security);
    expect(big.json<{ error: { code: string } }>().error.code).toBe('ERR_TOO_LARGE');
    const both = await runCli(['send', 'bob', 'text', '--stdin', '--json', '--config-dir', home], {
      input: 'x',
    });
    expect(both.exitCode).toBe(EXIT_CODES.usage);
  });

  it('a well-formed send to an alias needs the daemon: ERR_DAEMON_NOT_RUNNING', async () => {
    const r = await cli('send', 'bob', '--json-body', '{"task":"x"}', '--type', 'task-proposal', '--json');
    expect(r.exitCode).toBe(EXIT_CODES.daemon);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_DAEMON_NOT_RUNNING');
  });
});
