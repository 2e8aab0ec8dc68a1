// The sender's file outbox on loopback (real PQ sessions over real 127.0.0.1 sockets, real files): a transfer
// cut on the sender's side is durable before `send` answers `queued`, and a new file service on the same config
// dir (a restarted daemon) resumes it under the same offer id from the receiver's offset; a re-run reuses a
// pending entry; a file changed meanwhile fails its entry instead of reaching the receiver; old partials expire.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILE_OUTBOX_DIR } from '../../src/agent/file-outbox.js';
import type { FileService } from '../../src/agent/files-service.js';
import { FileInbox } from '../../src/agent/files-store.js';
import { FILE_ACK_EVERY_BYTES } from '../../src/agent/files-wire.js';
import { AgentKey } from '../../src/identity/keys.js';
import { seededFile, withFiles } from './files-helpers.js';
import { agentsPerTest, type Directory, type TestAgent, waitFor } from './messaging-helpers.js';

const { agent, cleanup } = agentsPerTest();
/** No background retry during the part of a test that must see the entry as the cut left it. */
const NEVER = { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 };
const FAST = { initialDelayMs: 20, maxDelayMs: 200 };

async function service(a: TestAgent, opts: Parameters<typeof withFiles>[1] = {}): Promise<FileService> {
  const s = await withFiles(a, opts);
  cleanup.push(() => s.stop());
  return s;
}

/** Sends `path` with one connection, dropping it once the receiver acknowledged `cutAt` bytes. */
function sendCut(a: TestAgent, files: FileService, to: string, path: string, cutAt: number) {
  let cut = false;
  return files.send(to, path, {
    attempts: 1,
    onProgress: (e) => {
      if (!cut && e.phase === 'send' && e.bytes >= cutAt) {
        cut = true;
        for (const s of a.node.sockets) s.destroy();
      }
    },
  });
}

async function outboxFiles(home: string): Promise<string[]> {
  return (await readdir(join(home, FILE_OUTBOX_DIR))).filter((n) => n.endsWith('.json'));
}

describe('file outbox (loopback)', () => {
  it('a transfer cut on the sender is queued durably and resumed under the same id by a restarted service', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const bob = await agent(dir);
    await service(bob);
    const f = await seededFile(alice.home, 'big.bin', 6 * 1024 * 1024, 11);
    const first = await service(alice, { retry: NEVER });
    const r = await sendCut(alice, first, bob.key.onion, f.path, 2 * FILE_ACK_EVERY_BYTES);
    expect(r).toMatchObject({ status: 'queued', sha256: f.sha256, reused: false });
    expect(await outboxFiles(alice.home)).toEqual([`${r.id}.json`]);
    expect(first.pending()).toMatchObject([
      { id: r.id, type: 'file', file: { state: 'pending', sha256: f.sha256, path: f.path } },
    ]);
    await first.stop(); // the daemon is gone; its outbox stays
    const events: string[] = [];
    await service(alice, { retry: FAST, events });
    await waitFor(async () => (await bob.messenger.inbox({ type: 'file' })).length === 1, 20_000, 'the file');
    const [listed] = await bob.messenger.inbox({ type: 'file' });
    expect(listed).toMatchObject({ id: r.id, body: { sha256: f.sha256 } });
    const resumed = events.find((e) => e.startsWith(`file-resumed ${r.id}`));
    expect(resumed, events.join('\n')).toBeDefined();
    expect(Number(resumed?.split(' from ')[1])).toBeGreaterThanOrEqual(2 * FILE_ACK_EVERY_BYTES);
    await waitFor(async () => (await outboxFiles(alice.home)).length === 0, 5_000, 'the entry removed');
    const stored = join(bob.home, 'files', alice.key.onion.replace('.onion', ''), `${r.id}-big.bin`);
    expect(
      createHash('sha256')
        .update(await readFile(stored))
        .digest('hex'),
    ).toBe(f.sha256);
    expect(await readdir(join(bob.home, 'files', '.partial'))).toEqual([]);
  });

  it('a re-run for the same peer and content while pending reuses the entry; other content gets its own', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const to = AgentKey.random().onion; // offline: not in the directory, every dial fails
    const files = await service(alice, { retry: NEVER });
    const f = await seededFile(alice.home, 'a.bin', 200_000, 3);
    const one = await files.send(to, f.path, { attempts: 1 });
    expect(one).toMatchObject({ status: 'queued', reused: false });
    expect(one.error?.code).toBeDefined();
    const again = await files.send(to, f.path, { attempts: 1 });
    expect(again).toMatchObject({ status: 'queued', id: one.id, reused: true });
    await mkdir(join(alice.home, 'copy'));
    const copy = await seededFile(join(alice.home, 'copy'), 'a.bin', 200_000, 3);
    expect(await files.send(to, copy.path, { background: true })).toMatchObject({ id: one.id, reused: true });
    const other = await seededFile(alice.home, 'b.bin', 200_000, 4);
    const two = await files.send(to, other.path, { background: true });
    expect(two.id).not.toBe(one.id);
    expect(files.pending().map((p) => [p.id, p.file.path])).toEqual([
      [one.id, copy.path],
      [two.id, other.path],
    ]);
    expect((await outboxFiles(alice.home)).sort()).toEqual([`${one.id}.json`, `${two.id}.json`].sort());
    await files.drop(one.id);
    await files.drop(two.id);
    expect(files.pending()).toEqual([]);
    expect(await outboxFiles(alice.home)).toEqual([]);
  });

  it('a file changed while queued fails its entry (ERR_FILE_CHANGED, listed), is never completed; retry after a restore resumes it', async () => {
    const dir: Directory = new Map();
    const alice = await agent(dir);
    const bob = await agent(dir);
    await service(bob);
    const f = await seededFile(alice.home, 'doc.bin', 4 * 1024 * 1024, 5);
    const original = await readFile(f.path);
    const first = await service(alice, { retry: NEVER });
    const r = await sendCut(alice, first, bob.key.onion, f.path, FILE_ACK_EVERY_BYTES);
    expect(r.status).toBe('queued');
    await first.stop();
    // Same size, other bytes past what the receiver holds: a resumption would splice two files.
    const changed = Buffer.from(original);
    changed.fill(0x55, changed.length - 1000);
    await writeFile(f.path, changed);
    const second = await service(alice, { retry: FAST });
    await waitFor(async () => second.pending()[0]?.file.state === 'failed', 20_000, 'the entry failed');
    expect(second.pending()).toMatchObject([
      { id: r.id, file: { state: 'failed' }, lastError: { code: 'ERR_FILE_CHANGED' } },
    ]);
    expect(await bob.messenger.inbox({ type: 'file' })).toEqual([]);
    await second.stop();
    // Still failed after a restart, and not retried by itself.
    const third = await service(alice, { retry: FAST });
    expect(third.pending()).toMatchObject([{ id: r.id, file: { state: 'failed' } }]);
    await writeFile(f.path, original);
    const retried = await third.retry(r.id);
    expect(retried).toEqual({ id: r.id, status: 'delivered' });
    const inbox = await bob.messenger.inbox({ type: 'file' });
    expect(inbox.map((m) => m.id)).toEqual([r.id]);
    expect(third.pending()).toEqual([]);
  });

  it('a partial transfer untouched for longer than the limit is removed at start; a recent one is kept', async () => {
    const dir: Directory = new Map();
    const bob = await agent(dir);
    const inbox = new FileInbox(bob.home);
    await inbox.init();
    const partial = join(inbox.dir, '.partial');
    for (const base of ['old-1', 'new-2']) {
      await writeFile(join(partial, `${base}.part`), 'bytes');
      await writeFile(join(partial, `${base}.json`), '{}');
    }
    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3_600_000);
    await utimes(join(partial, 'old-1.part'), eightDaysAgo, eightDaysAgo);
    await utimes(join(partial, 'old-1.json'), eightDaysAgo, eightDaysAgo);
    const events: string[] = [];
    await service(bob, { events });
    expect((await readdir(partial)).sort()).toEqual(['new-2.json', 'new-2.part']);
    expect(events).toEqual([expect.stringMatching(/^file-partial-expired old-1: /)]);
    expect(await inbox.sweep(60_000, Date.now() + 120_000)).toEqual(['new-2']);
    expect(await readdir(partial)).toEqual([]);
  });
});
