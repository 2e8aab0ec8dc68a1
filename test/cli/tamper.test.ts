import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// Someone with write access to the disk rewrites the agent's memory with real git: one entry is replaced by an
// edited copy and one by bytes that are no entry (both committed on `main` with git plumbing), and one loose
// object file is overwritten with garbage. `recall` must not stay silent about any of them.

let root: string;
let home: string;
let repo: string;
const git = (args: string[], input?: string) =>
  execFileSync('git', ['--git-dir', repo, ...args], {
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
    env: { ...process.env, GIT_INDEX_FILE: join(root, 'index') },
  }).trim();

interface Leaf {
  mode: string;
  oid: string;
  path: string;
}
const leaves = (): Leaf[] =>
  git(['ls-tree', '-r', 'main'])
    .split('\n')
    .map((l) => {
      const [meta, path] = l.split('\t') as [string, string];
      const [mode, , oid] = meta.split(' ') as [string, string, string];
      return { mode, oid, path };
    });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-tamper-'));
  home = join(root, 'agent');
  repo = join(home, 'memory');
  expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
  for (const content of ['kept as written', 'will be edited', 'will be junk', 'will be corrupt']) {
    expect((await runCli(['remember', '-t', 'learning', content, '--config-dir', home])).exitCode).toBe(0);
  }
  const byContent = (c: string) =>
    leaves().find((l) => git(['cat-file', 'blob', l.oid]).includes(`"content":"${c}"`)) as Leaf;
  const edited = byContent('will be edited');
  const junk = byContent('will be junk');
  const corrupt = byContent('will be corrupt');

  // 1 and 2: new blobs at the old paths, in a commit on main made with git itself.
  const editedOid = git(
    ['hash-object', '-w', '--stdin'],
    `${git(['cat-file', 'blob', edited.oid]).replace('will be edited', 'was edited!!')}\n`,
  );
  const junkOid = git(['hash-object', '-w', '--stdin'], 'rm -rf / # not an entry\n');
  git(['read-tree', 'main']);
  git(['update-index', '--cacheinfo', `100644,${editedOid},${edited.path}`]);
  git(['update-index', '--cacheinfo', `100644,${junkOid},${junk.path}`]);
  const tree = git(['write-tree']);
  const commit = git(['commit-tree', tree, '-p', 'main', '-m', 'tampered'], '');
  git(['update-ref', 'refs/heads/main', commit]);
  // 3: the object file itself overwritten.
  const file = join(repo, 'objects', corrupt.oid.slice(0, 2), corrupt.oid.slice(2));
  await chmod(file, 0o644);
  await writeFile(file, 'not a zlib stream');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a memory store tampered with on disk', () => {
  it('real git sees the corrupt object', () => {
    expect(() =>
      execFileSync('git', ['--git-dir', repo, 'fsck', '--no-dangling'], { stdio: 'pipe' }),
    ).toThrow();
  });

  it('`recall` lists the edited entry as UNVERIFIED and reports the unreadable ones on stderr', async () => {
    const r = await runCli(['recall', '--config-dir', home]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ {2}\[learning\] kept as written/);
    expect(r.stdout).toMatch(
      /✗ UNVERIFIED \(file name is not the SHA-256 of its bytes\) {2}\[learning\] was edited!!/,
    );
    expect(r.stdout).toContain('1 entry FAILED verification');
    expect(r.stderr).toContain(
      'warning: 2 entries of the memory store FAILED verification (unreadable: corrupt or tampered) and are not listed; run `mmogit recall --all` to list them',
    );
    // Filters cannot place an unreadable entry, but they do not hide the warning either.
    const filtered = await runCli(['recall', '-t', 'task', '--config-dir', home]);
    expect(filtered.stdout.trim()).toBe('no memories');
    expect(filtered.stderr).toContain('2 entries of the memory store FAILED verification');
  });

  it('`recall --all` and `show` list every entry that failed, and `--json` flags each', async () => {
    const all = await runCli(['recall', '--all', '--config-dir', home]);
    expect(all.exitCode).toBe(0);
    expect(all.stderr).toBe('');
    expect(all.stdout).toContain('3 entries FAILED verification');
    expect(all.stdout.match(/\[unreadable entry [0-9a-f]{16}…\]/g)).toHaveLength(2);
    expect(all.stdout).toMatch(
      /✗ UNVERIFIED \(file name is not the SHA-256 of its bytes\) {2}\[unreadable entry/,
    );
    expect(all.stdout).toMatch(/✗ UNVERIFIED \(entry object is unreadable/);

    const json = await runCli(['recall', '--all', '--json', '--config-dir', home]);
    const items = json.json<{ verified: boolean; problem?: string; content?: string }[]>();
    expect(items).toHaveLength(4);
    expect(items.filter((i) => !i.verified)).toHaveLength(3);
    expect(items.filter((i) => i.verified).map((i) => i.content)).toEqual(['kept as written']);

    const shown = await runCli(['show', '--config-dir', home]);
    expect(shown.stdout).toContain('3 entries FAILED verification');
  });
});

describe('a corrupt memory repository', () => {
  // Each breaks one thing a reader depends on; every command must fail with one typed line (no stack, never
  // ERR_INTERNAL) and must not write into the broken repository.
  const breakers: [string, (repo: string) => Promise<void>][] = [
    ['main names a missing commit', (r) => writeFile(join(r, 'refs/heads/main'), `${'0'.repeat(40)}\n`)],
    ['main holds garbage', (r) => writeFile(join(r, 'refs/heads/main'), 'garbage\n')],
    [
      'the tree object is garbage',
      async (r) => {
        const tree = execFileSync('git', ['--git-dir', r, 'rev-parse', 'main^{tree}'], {
          encoding: 'utf8',
        }).trim();
        const file = join(r, 'objects', tree.slice(0, 2), tree.slice(2));
        await chmod(file, 0o644);
        await writeFile(file, 'junk');
      },
    ],
    ['the objects dir is gone', (r) => rm(join(r, 'objects'), { recursive: true })],
  ];
  it.each(breakers)('%s', async (_name, breakIt) => {
    const dir = await mkdtemp(join(tmpdir(), 'mmogit-corrupt-'));
    try {
      expect((await runCli(['init', '--config-dir', dir])).exitCode).toBe(0);
      expect((await runCli(['remember', '-t', 'task', 'before', '--config-dir', dir])).exitCode).toBe(0);
      const r = join(dir, 'memory');
      await breakIt(r);
      const refBefore = await readFile(join(r, 'refs/heads/main'), 'utf8').catch(() => '');
      for (const args of [['recall'], ['show'], ['remember', '-t', 'task', 'after']]) {
        const out = await runCli([...args, '--json', '--config-dir', dir]);
        expect(out.exitCode, `${args[0]}: ${out.stderr}`).not.toBe(0);
        expect(out.exitCode).not.toBe(1);
        expect(out.json<{ error: { code: string } }>().error.code).not.toBe('ERR_INTERNAL');
        expect(out.stderr.trim().split('\n')).toHaveLength(1);
      }
      expect(await readFile(join(r, 'refs/heads/main'), 'utf8').catch(() => '')).toBe(refBefore);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
