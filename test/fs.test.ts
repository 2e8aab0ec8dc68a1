// writeFileDurable (src/_fs.ts) on a real file system: content, mode, no temp files, cancellation.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStaleDurableTemp, processGone, syncDir, writeFileDurable } from '../src/_fs.js';

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

describe('processGone', () => {
  it('counts this process and a live child as alive, an exited and reaped one as gone', async () => {
    expect(processGone(process.pid)).toBe(false);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid as number;
    expect(processGone(pid)).toBe(false);
    expect(isStaleDurableTemp(`x.json.tmp-${pid}-ab12`)).toBe(false);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited; // Node reaps its own children
    expect(processGone(pid)).toBe(true);
    expect(isStaleDurableTemp(`x.json.tmp-${pid}-ab12`)).toBe(true);
  });

  // A daemon SIGKILLed and restarted at once: its zombie waits for the init process (1.5-1.7 s on the CI
  // machines), and its temp files must already count as stale. `sh` starts a child, prints its pid and becomes
  // `sleep 5`, which never waits for children, so the child stays a zombie for those 5 s. The child exits only
  // once its parent is `sleep` (`$$` in a subshell is the parent shell's pid): a child that exited at once
  // could be reaped by the shell itself before the exec, as it was once on CI.
  it.skipIf(process.platform !== 'linux')('counts a zombie (dead, not reaped) as gone', async () => {
    const script = '(while [ "$(cat /proc/$$/comm)" != sleep ]; do sleep 0.01; done) & echo $!; exec sleep 5';
    const parent = spawn('sh', ['-c', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const pid = Number(
        await new Promise<string>((resolve, reject) => {
          parent.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
          parent.once('error', reject);
        }),
      );
      expect(pid).toBeGreaterThan(0);
      const state = () => {
        const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
        return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
      };
      const t0 = Date.now();
      while (state() !== 'Z') {
        if (Date.now() - t0 > 4_000)
          throw new Error(`child ${pid} not a zombie after 4 s (state ${state()})`);
        await new Promise((r) => setTimeout(r, 10));
      }
      // kill(pid, 0) still succeeds on a zombie: the /proc state is what tells it apart
      expect(() => process.kill(pid, 0)).not.toThrow();
      expect(processGone(pid)).toBe(true);
      expect(isStaleDurableTemp(`x.json.tmp-${pid}-ab12`)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
