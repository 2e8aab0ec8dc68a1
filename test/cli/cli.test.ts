import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { runCli } from '../helpers/cli.js';

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/identity/bip39-ed25519-onion.json', import.meta.url), 'utf8'),
) as { vectors: { mnemonic: string; ed25519PublicKeyHex: string; onion: string }[] };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const dir = (name: string) => join(root, name);

describe('mmogit init / tor address', () => {
  it('creates an identity, prints the phrase once, and refuses to overwrite it', async () => {
    const home = dir('alice');
    const r = await runCli(['init', '--json', '--config-dir', home]);
    expect(r.exitCode).toBe(0);
    const out = r.json<{ pubkey: string; onion: string; mnemonic: string }>();
    expect(out.pubkey).toMatch(/^[0-9a-f]{64}$/);
    expect(out.onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(out.mnemonic.split(' ')).toHaveLength(24);
    expect((await stat(join(home, 'identity.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(home)).mode & 0o777).toBe(0o700);

    const again = await runCli(['init', '--config-dir', home]);
    expect(again.exitCode).toBe(EXIT_CODES.config);
    expect(again.stderr).toContain('ERR_IDENTITY_EXISTS');

    const addr = await runCli(['tor', 'address', '--json', '--config-dir', home]);
    expect(addr.exitCode).toBe(0);
    expect(addr.json()).toEqual({ onion: out.onion, pubkey: out.pubkey });
    // The secret never appears in any output but init's own.
    expect(addr.stdout + addr.stderr).not.toContain(out.mnemonic.split(' ').slice(0, 3).join(' '));
  });

  it('restores from a phrase to the same key as the independent derivation, without echoing it', async () => {
    const v = vectors.vectors[1]!;
    const r = await runCli(['init', '--json', '--config-dir', dir('restored'), '--seed-phrase', v.mnemonic]);
    expect(r.exitCode).toBe(0);
    const out = r.json<Record<string, string>>();
    expect(out).toEqual({ pubkey: v.ed25519PublicKeyHex, onion: v.onion });
    // --force replaces it
    const forced = await runCli(['init', '--json', '--force', '--config-dir', dir('restored')]);
    expect(forced.exitCode).toBe(0);
    expect(forced.json<{ onion: string }>().onion).not.toBe(v.onion);
  });

  it.each([
    ['a 13-word phrase', `${Array(12).fill('abandon').join(' ')} about`],
    ['a 12-word phrase with a bad checksum', Array(12).fill('abandon').join(' ')],
    ['a wrong word', `${Array(23).fill('abandon').join(' ')} zebrafish`],
  ])('rejects %s with exit 2 and a typed error', async (_n, phrase) => {
    const home = dir(`bad-${phrase.length}`);
    const r = await runCli(['init', '--json', '--config-dir', home, '--seed-phrase', phrase]);
    expect(r.exitCode).toBe(EXIT_CODES.usage);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_INVALID_MNEMONIC');
    expect(r.stderr.trim().split('\n')).toHaveLength(1); // one clear line, no stack
    await expect(stat(join(home, 'identity.key'))).rejects.toThrow(); // nothing half-written
  });

  it('reports a missing config dir (exit 3) and refuses a key readable by others', async () => {
    const r = await runCli(['tor', 'address', '--config-dir', dir('nope')]);
    expect(r.exitCode).toBe(EXIT_CODES.config);
    expect(r.stderr).toContain('ERR_CONFIG_DIR_MISSING');
    const home = dir('leaky');
    expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
    await chmod(join(home, 'identity.key'), 0o644);
    const leaky = await runCli(['tor', 'address', '--config-dir', home]);
    expect(leaky.exitCode).toBe(EXIT_CODES.config);
    expect(leaky.stderr).toContain('ERR_INSECURE_PERMISSIONS');
  });

  it('uses MMOGIT_HOME when no --config-dir is given', async () => {
    const home = dir('env-home');
    const r = await runCli(['init', '--json'], { env: { MMOGIT_HOME: home } });
    expect(r.exitCode).toBe(0);
    const a = await runCli(['tor', 'address', '--json'], { env: { MMOGIT_HOME: home } });
    expect(a.json<{ onion: string }>().onion).toBe(r.json<{ onion: string }>().onion);
  });
});

describe('mmogit remember / recall / post / show', () => {
  const home = () => dir('memory-agent');
  beforeAll(async () => {
    expect((await runCli(['init', '--config-dir', home()])).exitCode).toBe(0);
  });

  it('stores memories and posts that recall/show list as verified, in a repo real git accepts', async () => {
    const a = await runCli([
      'remember',
      '-t',
      'learning',
      'tor needs a consensus before onions work',
      '--tags',
      'tor,network',
      '--confidence',
      '0.9',
      '--json',
      '--config-dir',
      home(),
    ]);
    expect(a.exitCode).toBe(0);
    expect(
      (await runCli(['remember', '-t', 'task', 'write the docs', '--config-dir', home()])).exitCode,
    ).toBe(0);
    expect((await runCli(['post', 'hello from the cli', '--config-dir', home()])).exitCode).toBe(0);

    const all = await runCli(['recall', '--json', '--config-dir', home()]);
    expect(all.exitCode).toBe(0);
    const items =
      all.json<{ type: string; content: string; verified: boolean; tags: string[]; author: string }[]>();
    expect(items.map((i) => i.type).sort()).toEqual(['learning', 'task']);
    expect(items.every((i) => i.verified)).toBe(true);
    const onion = (await runCli(['tor', 'address', '--json', '--config-dir', home()])).json<{
      onion: string;
    }>().onion;
    expect(items.every((i) => i.author === onion)).toBe(true);

    const learned = await runCli([
      'recall',
      '-t',
      'learning',
      '--tag',
      'tor',
      '--hours',
      '1',
      '--json',
      '--config-dir',
      home(),
    ]);
    const l = learned.json<{ content: string; confidence: number }[]>();
    expect(l).toHaveLength(1);
    expect(l[0]).toMatchObject({ content: 'tor needs a consensus before onions work', confidence: 0.9 });

    const shown = await runCli(['show', '--json', '--config-dir', home()]);
    const kinds = shown.json<{ kind: string; verified: boolean }[]>().map((e) => e.kind);
    expect(kinds).toContain('post');
    expect(kinds.filter((k) => k === 'memory')).toHaveLength(2);

    const repo = join(home(), 'memory');
    const log = execFileSync('git', ['--git-dir', repo, 'log', '--all', '--oneline'], { encoding: 'utf8' });
    expect(log.trim().split('\n').length).toBeGreaterThanOrEqual(1);
    execFileSync('git', ['--git-dir', repo, 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
  });

  it.each([
    [['remember', '-t', 'dream', 'x'], 'ERR_INVALID_MEMORY'],
    [['remember', '-t', 'learning', 'x', '--confidence', '1.5'], 'ERR_INVALID_MEMORY'],
    [['remember', '-t', 'learning', 'x', '--confidence', '-0.1'], 'ERR_INVALID_MEMORY'],
    [['recall', '-t', 'dream'], 'ERR_INVALID_MEMORY'],
    [['send', 'not-an-onion.onion', 'hi'], 'ERR_INVALID_ONION'],
    [['tor', 'connect', 'abcd.onion'], 'ERR_INVALID_ONION'],
  ])('rejects %j with exit 2 (%s) and writes nothing', async (args, code) => {
    const before = await runCli(['show', '--json', '--config-dir', home()]);
    const r = await runCli([...args, '--json', '--config-dir', home()]);
    expect(r.exitCode).toBe(EXIT_CODES.usage);
    expect(r.json<{ error: { code: string } }>().error.code).toBe(code);
    const after = await runCli(['show', '--json', '--config-dir', home()]);
    expect(after.json<unknown[]>()).toHaveLength(before.json<unknown[]>().length);
  });

  it('says the daemon is not running for network commands (exit 8)', async () => {
    const r = await runCli(['inbox', '--config-dir', home()]);
    expect(r.exitCode).toBe(EXIT_CODES.daemon);
    expect(r.stderr).toContain('ERR_DAEMON_NOT_RUNNING');
    const s = await runCli(['tor', 'status', '--json', '--config-dir', home()]);
    expect(s.exitCode).toBe(0);
    expect(s.json<{ running: boolean }>().running).toBe(false);
    const stop = await runCli(['tor', 'stop', '--json', '--config-dir', home()]);
    expect(stop.exitCode).toBe(0);
  });

  it('rejects unknown commands and flags as usage errors', async () => {
    expect((await runCli(['frobnicate'])).exitCode).toBe(EXIT_CODES.usage);
    expect((await runCli(['recall', '--bogus-flag', '--config-dir', home()])).exitCode).toBe(
      EXIT_CODES.usage,
    );
  });
});
