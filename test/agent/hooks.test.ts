// The on-message hook with real executables (/bin/sh scripts): what it gets on stdin and in its environment,
// its output in the log, the time bound (the whole process group is killed), the concurrency bound, a file that
// is not executable (a typed warning), and — with two real messengers — that a hanging hook never delays the
// ack or loses the message.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageHooks } from '../../src/agent/hooks.js';
import { signMessageV2 } from '../../src/agent/messaging-envelope-v2.js';
import { toReceived } from '../../src/agent/messaging-view.js';
import { AgentKey } from '../../src/identity/keys.js';
import { agentsPerTest, type Directory, waitFor } from './messaging-helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-hooks-'));
  await mkdir(join(dir, 'hooks'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const a = AgentKey.random();
const b = AgentKey.random();
const message = (body: string, type = 'message') => {
  const signed = signMessageV2(a, b.onion, { type, body, meta: { k: 'v' } });
  return { view: toReceived(signed.message, true, { at: 1, cursor: `m1.1.${signed.message.id}` }), signed };
};

async function hook(script: string, mode = 0o755): Promise<string> {
  const path = join(dir, 'hooks', 'on-message');
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, mode);
  return path;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('on-message hook', () => {
  it('gets the verified message and its envelope on stdin, the env variables, and its output is logged', async () => {
    await hook(
      'cat > "$MMOGIT_CONFIG_DIR/stdin.json"\nenv | grep ^MMOGIT_ | sort > "$MMOGIT_CONFIG_DIR/env"\necho hello from the hook\necho oops >&2',
    );
    const lines: string[] = [];
    const hooks = new MessageHooks(dir, { log: (l) => lines.push(l) });
    expect((await hooks.check()).state).toBe('ready');
    const m = message('hi there', 'task-proposal');
    hooks.onMessage(m.view, m.signed);
    await waitFor(() => lines.some((l) => l.includes('oops')) && hooks.load.running === 0);
    const got = JSON.parse(await readFile(join(dir, 'stdin.json'), 'utf8'));
    expect(got).toEqual({ ...m.view, envelope: m.signed });
    expect(got.verified).toBe(true);
    const env = await readFile(join(dir, 'env'), 'utf8');
    expect(env).toContain(`MMOGIT_MESSAGE_ID=${m.view.id}`);
    expect(env).toContain(`MMOGIT_MESSAGE_FROM=${a.onion}`);
    expect(env).toContain('MMOGIT_MESSAGE_TYPE=task-proposal');
    expect(env).toContain(`MMOGIT_MESSAGE_THREAD=${m.view.thread}`);
    expect(env).toContain(`MMOGIT_MESSAGE_CURSOR=${m.view.cursor}`);
    expect(env).toContain(`MMOGIT_CONFIG_DIR=${dir}`);
    expect(lines).toContain(`hook on-message ${m.view.id.slice(0, 8)} stdout: hello from the hook`);
    expect(lines).toContain(`hook on-message ${m.view.id.slice(0, 8)} stderr: oops`);
    await hooks.stop();
  });

  it('a hook that hangs is killed with everything it started after the time bound', async () => {
    // The shell starts a sleep that would outlive it: killing the process group ends both.
    await hook('echo $$ > "$MMOGIT_CONFIG_DIR/pid"\nsleep 600 &\necho $! > "$MMOGIT_CONFIG_DIR/child"\nwait');
    const lines: string[] = [];
    const events: string[] = [];
    const hooks = new MessageHooks(
      dir,
      { log: (l) => lines.push(l), event: (t) => events.push(t) },
      { timeoutMs: 300 },
    );
    const m = message('hang');
    hooks.onMessage(m.view, m.signed);
    await waitFor(async () => (await readdir(dir)).includes('child'));
    const child = Number((await readFile(join(dir, 'child'), 'utf8')).trim());
    expect(alive(child)).toBe(true);
    await waitFor(() => hooks.load.running === 0, 10_000, 'the hook to be killed');
    expect(lines.some((l) => l.includes('still running after 300 ms; killed'))).toBe(true);
    expect(events).toContain('hook-failed');
    await waitFor(() => !alive(child), 5_000, 'the hook’s child to be gone');
    await hooks.stop();
  });

  it('runs at most `concurrency` at once and queues the rest, none lost', async () => {
    await hook(
      [
        'touch "$MMOGIT_CONFIG_DIR/run-$MMOGIT_MESSAGE_ID"',
        'ls "$MMOGIT_CONFIG_DIR" | grep -c ^run- >> "$MMOGIT_CONFIG_DIR/counts"',
        'sleep 0.2',
        'rm "$MMOGIT_CONFIG_DIR/run-$MMOGIT_MESSAGE_ID"',
        'echo "$MMOGIT_MESSAGE_ID" >> "$MMOGIT_CONFIG_DIR/done"',
      ].join('\n'),
    );
    const hooks = new MessageHooks(dir, { log: () => {} }, { concurrency: 2 });
    const ms = Array.from({ length: 6 }, (_, i) => message(`m${i}`));
    for (const m of ms) hooks.onMessage(m.view, m.signed);
    expect(hooks.load.running + hooks.load.waiting).toBe(6);
    expect(hooks.load.running).toBeLessThanOrEqual(2);
    await waitFor(
      async () =>
        (await readFile(join(dir, 'done'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 6,
      15_000,
    );
    const counts = (await readFile(join(dir, 'counts'), 'utf8')).split('\n').filter(Boolean).map(Number);
    expect(Math.max(...counts)).toBeLessThanOrEqual(2);
    const done = (await readFile(join(dir, 'done'), 'utf8')).split('\n').filter(Boolean).sort();
    expect(done).toEqual(ms.map((m) => m.view.id).sort());
    await hooks.stop();
  });

  it('a hook file that is not executable is a typed warning, given once, and nothing runs', async () => {
    await hook('touch "$MMOGIT_CONFIG_DIR/ran"', 0o644);
    const lines: string[] = [];
    const hooks = new MessageHooks(dir, { log: (l) => lines.push(l) });
    const state = await hooks.check();
    expect(state).toMatchObject({ state: 'not-executable', error: { code: 'ERR_HOOK_NOT_EXECUTABLE' } });
    for (let i = 0; i < 3; i++) {
      const m = message(`x${i}`);
      hooks.onMessage(m.view, m.signed);
    }
    await waitFor(() => hooks.load.running + hooks.load.waiting === 0);
    expect(lines.filter((l) => l.includes('ERR_HOOK_NOT_EXECUTABLE'))).toHaveLength(1);
    expect(await readdir(dir)).not.toContain('ran');
    // No hook at all is no warning.
    await rm(join(dir, 'hooks', 'on-message'));
    expect((await hooks.check()).state).toBe('missing');
    await hooks.stop();
  });
});

const { agent } = agentsPerTest();

describe('a hanging hook and the ack', () => {
  it('the sender has its ack while the hook still runs; the message is stored once', async () => {
    const net: Directory = new Map();
    const alice = await agent(net);
    const bob = await agent(net);
    await hook('sleep 600');
    const hooksDir = dir;
    const hooks = new MessageHooks(hooksDir, { log: () => {} }, { timeoutMs: 60_000 });
    bob.messenger.on('received', (m, signed) => hooks.onMessage(m, signed));
    const r = await alice.messenger.send(bob.key.onion, { type: 'status-update', body: { ok: true } });
    expect(r.status).toBe('delivered');
    await waitFor(() => hooks.load.running === 1, 5_000, 'the hook to start');
    // Acked and stored while the hook hangs.
    expect((await bob.messenger.inbox()).map((m) => m.id)).toEqual([r.id]);
    await hooks.stop();
    expect(hooks.load.running).toBe(0);
    expect((await bob.messenger.inbox()).map((m) => m.id)).toEqual([r.id]);
  });
});
