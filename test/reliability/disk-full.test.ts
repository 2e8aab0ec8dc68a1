// A full disk under a real agent: the config dir on a 2 MiB tmpfs. Memory writes fail with ERR_DISK_FULL (and
// `mmogit remember` exits 3 with it), everything stored before stays readable and verified, `git fsck --strict`
// finds nothing broken, messaging neither loses nor doubles a message (the receiver refuses what it cannot
// store, so the sender keeps it queued), and all of it works again once there is room.
// Needs root to mount a tmpfs; skipped, saying why, where that is not allowed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { Agent } from '../../src/agent/agent.js';
import { AgentKey } from '../../src/identity/keys.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { agentsPerTest, collect, type Directory, waitFor } from '../agent/messaging-helpers.js';
import { runCli } from '../helpers/cli.js';

/** Whether this machine lets the test mount a tmpfs (root, and no container rule against it). */
function mountAllowed(): { ok: true } | { ok: false; why: string } {
  const probe = mkdtempSync(join(tmpdir(), 'mmogit-tmpfs-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { encoding: 'utf8' });
    if (r.status !== 0)
      return { ok: false, why: `mount -t tmpfs is not permitted here: ${r.stderr.trim() || r.error}` };
    spawnSync('umount', [probe]);
    return { ok: true };
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const allowed = mountAllowed();
if (!allowed.ok) console.warn(`[reliability] disk-full tests skipped: ${allowed.why}`);

let mnt = '';
beforeEach(() => {
  if (!allowed.ok) return;
  mnt = mkdtempSync(join(tmpdir(), 'mmogit-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt]);
});
afterEach(async () => {
  if (!mnt) return;
  spawnSync('umount', ['-l', mnt]);
  await rm(mnt, { recursive: true, force: true });
  mnt = '';
});

const remount = (size: string) => execFileSync('mount', ['-o', `remount,size=${size}`, mnt]);

/** Fills the file system with a filler file until ENOSPC; returns its path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  try {
    for (let i = 0; i < 10_000; i++) await fh.write(chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await fh.close().catch(() => {});
  }
  return path;
}

/**
 * `git fsck --strict` of the memory repo: its exit status and the lines that name a real problem. Dangling
 * objects (a write cut by ENOSPC between its objects and its ref move leaves them) are harmless and not listed;
 * the words are matched whole, so an object id that happens to spell "bad" is no problem.
 */
function fsck(configDir: string): { status: number | null; problems: string[] } {
  const r = spawnSync(
    'git',
    ['--git-dir', join(configDir, 'memory'), 'fsck', '--strict', '--full', '--no-dangling'],
    { encoding: 'utf8' },
  );
  const problems = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .filter((l) => /\b(error|corrupt|missing|broken|invalid|bad)\b/i.test(l));
  return { status: r.status, problems };
}

const entry = (n: number) => ({
  type: 'learning' as const,
  content: `${'a fact worth keeping '.repeat(1000)}#${n}`,
  tags: ['disk'],
  confidence: 0.5,
});

describe.skipIf(!allowed.ok)('disk full (2 MiB tmpfs config dir)', () => {
  it('memory writes fail with ERR_DISK_FULL; reads, fsck and the stored entries hold; writes work again with room', async () => {
    const home = join(mnt, 'agent');
    const { agent } = await Agent.init({ configDir: home });
    let stored = 0;
    let failure: unknown;
    for (; stored < 1_000; stored++) {
      try {
        await agent.remember(entry(stored));
      } catch (e) {
        failure = e;
        break;
      }
    }
    console.log(`[reliability] disk full: ${stored} entries of ~21 KB stored on 2 MiB, then ERR_DISK_FULL`);
    expect(stored).toBeGreaterThan(5);
    expect(failure).toMatchObject({ code: 'ERR_DISK_FULL', details: { errno: 'ENOSPC' } });
    expect((failure as Error).message).toMatch(/no space left .* free some space and retry/);

    // Reads keep working, every entry written before is there and verifies, and git finds nothing broken.
    const recalled = await agent.recall({ limit: 10_000 });
    expect(recalled.filter((r) => r.verified)).toHaveLength(stored);
    const check = fsck(home);
    expect(check.problems).toEqual([]);
    expect(check.status).toBe(0);

    // The CLI says the same with its exit code (config, 3), in one line.
    const cli = await runCli([
      'remember',
      '-t',
      'learning',
      'x'.repeat(30_000),
      '--json',
      '--config-dir',
      home,
    ]);
    expect(cli.exitCode).toBe(EXIT_CODES.config);
    expect(cli.stderr).toContain('ERR_DISK_FULL');
    expect(cli.stderr).not.toMatch(/\n\s+at /);

    // Room again: the next write succeeds and nothing was lost meanwhile.
    remount('16m');
    await agent.remember(entry(stored));
    expect(await agent.recall({ limit: 10_000 })).toHaveLength(stored + 1);
    expect(fsck(home)).toEqual({ status: 0, problems: [] });
    await agent.close();
  }, 120_000);

  describe('messaging', () => {
    const { agent } = agentsPerTest();

    it('a receiver with a full disk refuses (no ack); the sender keeps the message and it arrives once when room returns', async () => {
      const dir: Directory = new Map();
      const receiverHome = join(mnt, 'receiver');
      await mkdir(receiverHome, { mode: 0o700 });
      const metrics = new AgentMetrics();
      const receiver = await agent(dir, { home: receiverHome, deps: { metrics } });
      const sender = await agent(dir);
      const got = collect(receiver);
      const filler = await fill(mnt);

      const sent = await sender.messenger.send(receiver.key.onion, 'kept safe while the disk is full');
      expect(sent.status).toBe('queued');
      await new Promise((r) => setTimeout(r, 1_000)); // several retries, all refused
      expect(got).toEqual([]);
      expect(sender.messenger.pending().map((p) => p.id)).toEqual([sent.id]);
      expect(await metrics.registry.metrics()).toMatch(
        /^mmogit_messages_refused_total\{direction="in",reason="ERR_DISK_FULL"\} [1-9]/m,
      );

      await rm(filler);
      await waitFor(() => got.length > 0, 15_000, 'delivery after space returned');
      await waitFor(() => sender.messenger.pending().length === 0, 5_000, 'the outbox to empty');
      await new Promise((r) => setTimeout(r, 500));
      expect(got.map((m) => m.id)).toEqual([sent.id]);
      expect((await receiver.messenger.inbox()).filter((m) => m.id === sent.id)).toHaveLength(1);
    }, 60_000);

    it('a sender with a full disk cannot queue: send fails with ERR_DISK_FULL and status failed', async () => {
      const senderHome = join(mnt, 'sender');
      await mkdir(senderHome, { mode: 0o700 });
      const sender = await agent(new Map(), { home: senderHome });
      await fill(mnt);
      // Nobody listens for this onion, so the message would have to be queued.
      const err = await sender.messenger
        .send(AgentKey.random().onion, 'no room for me', { timeoutMs: 1_000 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_DISK_FULL', details: { status: 'failed' } });
      expect(sender.messenger.pending()).toEqual([]);
    }, 30_000);
  });
});
