/**
 * Creates an empty bare git repository: the layout `git init --bare` makes that git itself needs (gitrepository-
 * layout(5): `HEAD`, `config`, `objects/`, `refs/heads/`, `refs/tags/`), byte for byte what isomorphic-git's
 * `init({ bare: true })` wrote before, so repositories made before and after are the same. This is the one thing
 * the store used isomorphic-git for at run time; isomorphic-git stays as the independent reader in tests.
 * @module
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const FOLDERS = ['hooks', 'info', 'objects/info', 'objects/pack', 'refs/heads', 'refs/tags'];

/** The `config` of a bare repository (isomorphic-git's text: git reads it the same). */
export const BARE_CONFIG =
  '[core]\n\trepositoryformatversion = 0\n\tfilemode = false\n\tbare = true\n\tsymlinks = false\n\tignorecase = true\n';

/** Makes `dir` an empty bare repository whose HEAD names `branch`; leaves an existing one (a `config`) alone. */
export async function initBareRepository(dir: string, branch = 'main'): Promise<void> {
  const exists = await stat(join(dir, 'config')).then(
    () => true,
    () => false,
  );
  if (exists) return;
  for (const folder of FOLDERS) await mkdir(join(dir, folder), { recursive: true });
  await writeFile(join(dir, 'config'), BARE_CONFIG);
  // HEAD last: the store takes a HEAD as "the repository exists".
  await writeFile(join(dir, 'HEAD'), `ref: refs/heads/${branch}\n`);
}
