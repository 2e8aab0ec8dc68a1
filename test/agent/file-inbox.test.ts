import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileInbox } from '../../src/agent/files-store.js';

describe('FileInbox.init', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'mmogit-files-store-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it("removes a killed writer's partial-state temp file on restart, keeps a live writer's and every partial", async () => {
    const first = new FileInbox(home);
    await first.init();
    const partials = join(first.dir, '.partial');
    // a pid that is certainly gone: a child that has exited and been reaped
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const crashed = `sender-${'a'.repeat(32)}.json.tmp-${dead}-ab12`;
    const live = `sender-${'b'.repeat(32)}.json.tmp-${process.pid}-cd34`;
    const state = `sender-${'a'.repeat(32)}.json`;
    const part = `sender-${'a'.repeat(32)}.part`;
    for (const n of [crashed, live, state, part]) await writeFile(join(partials, n), 'x');
    await new FileInbox(home).init(); // the daemon's restart
    expect((await readdir(partials)).sort()).toEqual([live, part, state].sort());
  });
});
