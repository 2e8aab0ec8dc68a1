// writeFileDurable (src/_fs.ts) on a real file system: content, mode, no temp files, cancellation.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncDir, writeFileDurable } from '../src/_fs.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-fs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileDurable', () => {
  it('writes a new file with the mode asked for (0600 by default) and leaves no temp file', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    expect(await writeFileDurable(a, '{"a":1}\n')).toBe(true);
    expect(await writeFileDurable(b, new Uint8Array([1, 2, 3]), { mode: 0o644 })).toBe(true);
    expect(await readFile(a, 'utf8')).toBe('{"a":1}\n');
    expect([...(await readFile(b))]).toEqual([1, 2, 3]);
    expect((await stat(a)).mode & 0o777).toBe(0o600);
    // the umask may clear group/other bits, never add them
    expect((await stat(b)).mode & 0o777 & ~0o644).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'b.json']);
  });

  it('replaces an existing file whole', async () => {
    const p = join(dir, 'state');
    await writeFile(p, 'old old old old');
    await writeFileDurable(p, 'new');
    expect(await readFile(p, 'utf8')).toBe('new');
  });

  it('writes nothing when cancelled before the rename', async () => {
    const p = join(dir, 'state');
    await writeFile(p, 'old');
    for (const stopAt of [1, 2, 3, 4]) {
      let checks = 0;
      const done = await writeFileDurable(p, 'new', { cancelled: () => ++checks >= stopAt });
      expect(done).toBe(false);
      expect(await readFile(p, 'utf8')).toBe('old');
      expect(await readdir(dir)).toEqual(['state']);
    }
  });

  it('rejects with the errno when the directory does not exist', async () => {
    await expect(writeFileDurable(join(dir, 'missing', 'x'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('syncDir', () => {
  it('syncs a directory and ignores one that cannot be opened', async () => {
    await expect(syncDir(dir)).resolves.toBeUndefined();
    await expect(syncDir(join(dir, 'missing'))).resolves.toBeUndefined();
  });
});
