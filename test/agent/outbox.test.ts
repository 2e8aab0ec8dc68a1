import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signMessage } from '../../src/agent/messaging-envelope.js';
import type { AnyEnvelope } from '../../src/agent/messaging-envelope-v2.js';
import { idOfFile, Outbox } from '../../src/agent/outbox.js';
import { AgentKey } from '../../src/identity/keys.js';

/** A stored record's text (these tests store version 1 text messages). */
const textOf = (r: { message: AnyEnvelope }): string =>
  r.message.v === 1 ? r.message.text : String(r.message.body);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const key = AgentKey.random();
const peer = AgentKey.random().onion;

describe('Outbox', () => {
  it('persists signed messages as <id>.json (0600, dir 0700) and lists them oldest first', async () => {
    const outbox = new Outbox(join(dir, 'outbox'));
    const later = signMessage(key, peer, 'second', { timestamp: 2_000 });
    const earlier = signMessage(key, peer, 'first', { timestamp: 1_000 });
    await outbox.put(later);
    await outbox.put(earlier);
    expect((await readdir(outbox.dir)).sort()).toEqual(
      [`${earlier.message.id}.json`, `${later.message.id}.json`].sort(),
    );
    expect((await stat(join(outbox.dir, `${later.message.id}.json`))).mode & 0o777).toBe(0o600);
    expect((await stat(outbox.dir)).mode & 0o777).toBe(0o700);
    // A second Outbox on the same dir (a restarted daemon) sees the same items.
    const { items, corrupt } = await new Outbox(outbox.dir).list();
    expect(items.map((i) => textOf(i))).toEqual(['first', 'second']);
    expect(corrupt).toEqual([]);
    expect(await outbox.has(earlier.message.id)).toBe(true);
    expect(await outbox.remove(earlier.message.id)).toBe(true);
    expect(await outbox.remove(earlier.message.id)).toBe(false);
    expect((await outbox.list()).items.map((i) => i.message.id)).toEqual([later.message.id]);
  });

  it('an absent directory is an empty outbox', async () => {
    expect(await new Outbox(join(dir, 'nope')).list()).toEqual({ items: [], corrupt: [] });
  });

  it('sets aside torn, foreign-format and tampered files, and ignores temp files', async () => {
    const outbox = new Outbox(dir);
    const good = signMessage(key, peer, 'ok');
    await outbox.put(good);
    const tampered = signMessage(key, peer, 'original');
    const item = JSON.parse(JSON.stringify({ format: 'mmogit-outbox', v: 1, ...tampered, queuedAt: 1 }));
    item.message.text = 'changed';
    await writeFile(join(dir, `${tampered.message.id}.json`), JSON.stringify(item));
    const torn = 'a'.repeat(32);
    await writeFile(join(dir, `${torn}.json`), '{"format":"mmogit-outbox","v":1,"mess');
    const renamed = signMessage(key, peer, 'file name does not match id');
    await writeFile(
      join(dir, `${'b'.repeat(32)}.json`),
      JSON.stringify({ format: 'mmogit-outbox', v: 1, ...renamed, queuedAt: 1 }),
    );
    await writeFile(join(dir, `${good.message.id}.json.tmp-1-2`), 'partial');

    const { items, corrupt } = await outbox.list();
    expect(items.map((i) => i.message.id)).toEqual([good.message.id]);
    expect(corrupt.sort()).toEqual(
      [`${'b'.repeat(32)}.json`, `${tampered.message.id}.json`, `${torn}.json`].sort(),
    );
    const names = await readdir(dir);
    expect(names).toContain(`${torn}.json.corrupt`);
    expect(names).toContain(`${good.message.id}.json.tmp-1-2`);
    // A second listing no longer reports them.
    expect((await outbox.list()).corrupt).toEqual([]);
    expect(JSON.parse(await readFile(join(dir, `${good.message.id}.json`), 'utf8')).format).toBe(
      'mmogit-outbox',
    );
  });

  it("removes a crashed writer's temp file, keeps a live writer's", async () => {
    const outbox = new Outbox(dir);
    const good = signMessage(key, peer, 'ok');
    await outbox.put(good);
    // a pid that is certainly gone: a child that has exited and been reaped
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const crashed = `${'c'.repeat(32)}.json.tmp-${dead}-ab12`;
    const ours = `${'d'.repeat(32)}.json.tmp-${process.pid}-cd34`;
    await writeFile(join(dir, crashed), 'half a wri');
    await writeFile(join(dir, ours), 'being written');
    const { items, corrupt } = await outbox.list();
    expect(items.map((i) => i.message.id)).toEqual([good.message.id]);
    expect(corrupt).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([`${good.message.id}.json`, ours].sort());
  });

  it('begin(): a write cancelled before its rename leaves no file and no temp file', async () => {
    const outbox = new Outbox(join(dir, 'outbox'));
    await outbox.init();
    const w = outbox.begin(signMessage(key, peer, 'never needed'));
    w.cancel(); // e.g. the ack came first
    expect(await w.done).toBe(false);
    expect(await readdir(outbox.dir)).toEqual([]);
  });

  it('begin(): a completed write is durable and readable; discard() removes it', async () => {
    const outbox = new Outbox(join(dir, 'outbox'));
    const signed = signMessage(key, peer, 'kept');
    const w = outbox.begin(signed, 42);
    expect(await w.done).toBe(true);
    expect(await outbox.read(signed.message.id)).toEqual({ ...signed, queuedAt: 42 });
    w.cancel(); // too late: no effect on a finished write
    expect(await outbox.has(signed.message.id)).toBe(true);
    await outbox.discard(w);
    expect(await readdir(outbox.dir)).toEqual([]);
  });

  it('begin(): a failed write rejects, leaves nothing, and discard() does not throw', async () => {
    await writeFile(join(dir, 'outbox'), 'a file where the directory should be');
    const outbox = new Outbox(join(dir, 'outbox'));
    const w = outbox.begin(signMessage(key, peer, 'nowhere'));
    await expect(w.done).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    await outbox.discard(w);
    expect(await readdir(dir)).toEqual(['outbox']);
  });

  it('refuses a path-traversing id', async () => {
    await expect(new Outbox(dir).remove('../../etc/passwd')).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('idOfFile: only <32 lower-case hex>.json names a message (the id rule of every message)', () => {
    const id = 'a1'.repeat(16);
    expect(idOfFile(`${id}.json`)).toBe(id);
    for (const name of [
      `${id}.json.corrupt`,
      `${id}.json.tmp-1-2`,
      `${id.toUpperCase()}.json`,
      `${id.slice(1)}.json`,
      `${id}0.json`,
      `${id}`,
      '.json',
    ]) {
      expect(idOfFile(name), name).toBeUndefined();
    }
  });
});
