// initBareRepository against isomorphic-git's init (what created the repositories before) and real git.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import git from 'isomorphic-git';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initBareRepository } from '../../src/memory/_init-repo.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-init-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tree(dir: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = relative(dir, join(e.parentPath ?? e.path, e.name));
    out[path] = e.isFile() ? await readFile(join(dir, path), 'utf8') : null;
  }
  return out;
}

describe('initBareRepository', () => {
  it('makes what isomorphic-git init made, and real git takes it as an empty bare repository', async () => {
    const ours = join(root, 'ours');
    const theirs = join(root, 'theirs');
    await initBareRepository(ours);
    await git.init({ fs, dir: theirs, gitdir: theirs, bare: true, defaultBranch: 'main' });
    expect(await tree(ours)).toEqual(await tree(theirs));
    const run = (...args: string[]) =>
      execFileSync('git', ['-C', ours, ...args], { encoding: 'utf8' }).trim();
    expect(run('rev-parse', '--is-bare-repository')).toBe('true');
    expect(run('symbolic-ref', 'HEAD')).toBe('refs/heads/main');
    run('fsck', '--strict');
  });

  it('leaves an existing repository alone', async () => {
    const dir = join(root, 'r');
    await initBareRepository(dir, 'main');
    await initBareRepository(dir, 'other');
    expect(await readFile(join(dir, 'HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
  });
});
