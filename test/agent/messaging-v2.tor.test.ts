// Messaging v2 on the private Tor network with real agents: two CLI daemons (a, b) and one SDK agent that
// speaks only message format version 1 (v1). Typed, threaded messages round-trip and verify; `inbox --follow`
// sees a message sent after it started and resumes from its cursor across a daemon restart; a version 1 peer
// interoperates for plain text and gets a typed refusal otherwise; b's on-message hook gets each verified
// envelope, and one that hangs is killed without the message being lost or its ack delayed; the outbox, ping
// and daemon-log views.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { Agent } from '../../src/agent/agent.js';
import { callDaemon } from '../../src/agent/daemon.js';
import { verifyAnyMessage } from '../../src/agent/messaging-envelope-v2.js';
import type { PendingMessage, ReceivedMessage } from '../../src/agent/messaging-types.js';
import { AgentKey } from '../../src/identity/keys.js';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';

let root: string;
let network: string;
let v1: Agent;
const home = (name: string) => join(root, name);
const onions: Record<string, string> = {};
const children = new Set<ChildProcess>();

async function cli(name: string, args: string[], timeoutMs = 120_000) {
  return runCli([...args, '--config-dir', home(name)], { timeoutMs });
}

async function startDaemon(name: string): Promise<void> {
  const r = await cli(name, ['tor', 'start', '--network', network, '--json'], 150_000);
  expect(r.exitCode, r.stderr).toBe(0);
}

/** A long-running `mmogit …args` whose stdout lines can be awaited one by one (killed after the tests). */
function follow(name: string, args: string[]) {
  const child = spawn(process.execPath, [MMOGIT_BIN, ...args, '--config-dir', home(name)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  let buffer = '';
  let stderr = '';
  let waiter: (() => void) | undefined;
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString('utf8');
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    waiter?.();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  return {
    /** The next NDJSON line, parsed; fails after `ms`. */
    async next(ms = 90_000): Promise<ReceivedMessage> {
      const until = Date.now() + ms;
      while (lines.length === 0) {
        if (Date.now() > until || child.exitCode !== null) {
          throw new Error(
            `no line from mmogit ${args.join(' ')} (exit ${child.exitCode}); stderr:\n${stderr}`,
          );
        }
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 250);
        });
      }
      return JSON.parse(lines.shift() as string) as ReceivedMessage;
    },
    stderr: () => stderr,
    stop() {
      child.kill('SIGTERM');
      children.delete(child);
    },
  };
}

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-msg2-'));
  for (const name of ['a', 'b']) {
    const r = await cli(name, ['init', '--json']);
    onions[name] = r.json<{ onion: string }>().onion;
  }
  // b's hook keeps what it reads; a message of type test.hang makes it hang (the bound is 2 s here).
  await writeFile(join(home('b'), 'config.json'), JSON.stringify({ hooks: { timeoutMs: 2_000 } }));
  await mkdir(join(home('b'), 'hooks'));
  const hook = join(home('b'), 'hooks', 'on-message');
  await writeFile(
    hook,
    [
      '#!/bin/sh',
      'cat > "$MMOGIT_CONFIG_DIR/hook-$MMOGIT_MESSAGE_ID.json"',
      'echo "hook saw $MMOGIT_MESSAGE_TYPE from $MMOGIT_MESSAGE_FROM"',
      'if [ "$MMOGIT_MESSAGE_TYPE" = "test.hang" ]; then',
      '  sleep 600 &',
      '  echo $! > "$MMOGIT_CONFIG_DIR/hang.pid"',
      '  wait',
      'fi',
      '',
    ].join('\n'),
  );
  await chmod(hook, 0o755);
  await Promise.all([startDaemon('a'), startDaemon('b')]);
  v1 = (await Agent.init({ configDir: home('v1') })).agent;
  await v1.start({ network, messagingVersions: [1], networkBootstrap: false, timeoutMs: 120_000 });
  onions.v1 = v1.address;
  expect((await cli('a', ['contacts', 'add', 'bob', onions.b as string])).exitCode).toBe(0);
  expect((await cli('a', ['contacts', 'add', 'old', onions.v1])).exitCode).toBe(0);
}, 400_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await v1?.close();
  for (const name of ['a', 'b']) await cli(name, ['tor', 'stop']).catch(() => {});
  await rm(root, { recursive: true, force: true });
}, 120_000);

describe('messaging v2 over tor', () => {
  it('typed, threaded messages with JSON bodies and metadata round-trip and verify', async () => {
    const sent = await cli('a', [
      'send',
      'bob',
      '--json-body',
      '{"task":"summarise the logs","priority":1}',
      '--type',
      'task-proposal',
      '--meta',
      'deadline=2026-12-31',
      '--json',
    ]);
    expect(sent.exitCode, sent.stderr).toBe(0);
    const proposal = sent.json<{ id: string; status: string; thread: string; to: string }>();
    expect(proposal).toMatchObject({ status: 'delivered', thread: proposal.id, to: onions.b });

    const inB = (await cli('b', ['inbox', '--type', 'task-proposal', '--json'])).json<ReceivedMessage[]>();
    expect(inB).toEqual([
      expect.objectContaining({
        id: proposal.id,
        from: onions.a,
        v: 2,
        type: 'task-proposal',
        body: { task: 'summarise the logs', priority: 1 },
        meta: { deadline: '2026-12-31' },
        thread: proposal.id,
        verified: true,
      }),
    ]);
    // b answers from stdin; the reply joins the proposal's thread.
    const reply = await runCli(
      [
        'send',
        onions.a as string,
        '--stdin',
        '--type',
        'task-result',
        '--reply-to',
        proposal.id,
        '--json',
        '--config-dir',
        home('b'),
      ],
      { input: 'done: 3 errors found', timeoutMs: 120_000 },
    );
    expect(reply.exitCode, reply.stderr).toBe(0);
    expect(reply.json<{ thread: string }>().thread).toBe(proposal.id);
    const thread = (await cli('a', ['inbox', '--thread', proposal.id, '--json'])).json<ReceivedMessage[]>();
    expect(thread).toEqual([
      expect.objectContaining({
        from: onions.b,
        type: 'task-result',
        text: 'done: 3 errors found',
        replyTo: proposal.id,
        thread: proposal.id,
        verified: true,
      }),
    ]);
  }, 180_000);

  it('inbox --follow sees a message sent after it started and resumes from its cursor across a daemon restart', async () => {
    const follower = follow('b', ['inbox', '--follow', '--json', '--from', onions.a as string]);
    // Everything already there comes first (the proposal of the test before), then the new message.
    const first = await follower.next();
    expect(first.type).toBe('task-proposal');
    expect((await cli('a', ['send', 'bob', 'sent while b follows', '--json'])).exitCode).toBe(0);
    const live = await follower.next();
    expect(live).toMatchObject({ text: 'sent while b follows', from: onions.a, verified: true });
    expect(live.cursor).toMatch(/^m1\.\d+\.[0-9a-f]{32}$/);

    // b's daemon restarts; a message sent meanwhile waits in a's outbox and reaches b after its restart.
    expect((await cli('b', ['tor', 'stop'])).exitCode).toBe(0);
    const queued = await cli('a', ['send', 'bob', 'sent while b was down', '--json']);
    expect(queued.json<{ status: string }>().status).toBe('queued');
    await startDaemon('b');
    // The same follower reconnects by itself and goes on from its last cursor: the queued message, once.
    const resumed = await follower.next(120_000);
    expect(resumed).toMatchObject({ text: 'sent while b was down', verified: true });
    expect(follower.stderr()).toContain('resuming from');
    follower.stop();

    // A new follower from the saved cursor gets exactly what came after it.
    const again = follow('b', ['inbox', '--follow', '--json', '--since', live.cursor as string]);
    expect(await again.next()).toMatchObject({ id: resumed.id });
    again.stop();
    const all = (await cli('b', ['inbox', '--json', '--from', onions.a as string])).json<ReceivedMessage[]>();
    expect(all.filter((m) => m.text === 'sent while b was down')).toHaveLength(1);
  }, 300_000);

  it('a version 1 agent gets plain text as version 1, and a typed refusal for what needs version 2', async () => {
    const got: ReceivedMessage[] = [];
    v1.on('message', (m) => got.push(m));
    const plain = await cli('a', ['send', 'old', 'hello, version 1', '--json']);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.json<{ status: string }>().status).toBe('delivered');
    expect(got).toEqual([expect.objectContaining({ v: 1, text: 'hello, version 1', from: onions.a })]);

    const typed = await cli('a', [
      'send',
      'old',
      '--json-body',
      '{"q":"capabilities?"}',
      '--type',
      'capability-query',
      '--json',
    ]);
    expect(typed.exitCode).toBe(EXIT_CODES.network);
    expect(typed.json<{ error: { code: string; details: { status: string } } }>().error).toMatchObject({
      code: 'ERR_PEER_UNSUPPORTED',
      details: { status: 'refused' },
    });
    expect(got).toHaveLength(1);
    // Nothing was left queued for it.
    const status = (await cli('a', ['tor', 'status', '--json'])).json<{ outbox: number }>();
    expect(status.outbox).toBe(0);

    // And the version 1 agent's own messages reach a version 2 daemon.
    const back = await v1.send(onions.a as string, 'hello from version 1');
    expect(back.status).toBe('delivered');
    const fromV1 = (await cli('a', ['inbox', '--from', 'old', '--json'])).json<ReceivedMessage[]>();
    expect(fromV1).toEqual([
      expect.objectContaining({ v: 1, type: 'message', text: 'hello from version 1', verified: true }),
    ]);
  }, 180_000);

  it('a hook gets each verified envelope; one that hangs is killed, the message stored and acked', async () => {
    const sent = await cli('a', ['send', 'bob', '--type', 'test.hang', '--json-body', '{"n":1}', '--json']);
    expect(sent.exitCode, sent.stderr).toBe(0);
    const { id, status } = sent.json<{ id: string; status: string }>();
    expect(status).toBe('delivered'); // acked while the hook hangs
    const file = join(home('b'), `hook-${id}.json`);
    // The hook writes it while it runs: wait until the whole document is there.
    let got: Record<string, unknown> & { envelope?: unknown } = {};
    await waitUntil(async () => {
      try {
        got = JSON.parse(await readFile(file, 'utf8'));
        return true;
      } catch {
        return false;
      }
    }, 'the hook’s stdin');
    expect(got).toMatchObject({ id, from: onions.a, type: 'test.hang', body: { n: 1 }, verified: true });
    expect(verifyAnyMessage(got.envelope as Parameters<typeof verifyAnyMessage>[0])).toBe(true);
    // The hook is killed after its 2 s, with what it started; the daemon log says so.
    await waitUntil(async () => (await readdir(home('b'))).includes('hang.pid'), 'the hung hook');
    const pid = Number((await readFile(join(home('b'), 'hang.pid'), 'utf8')).trim());
    await waitUntil(async () => {
      const log = (await cli('b', ['daemon', 'log', '--json', '--lines', '1000'])).json<{
        lines: string[];
      }>();
      return log.lines.some((l) => l.includes(`${id.slice(0, 8)}: still running after 2000 ms; killed`));
    }, 'the kill in the daemon log');
    await waitUntil(async () => !alive(pid), 'the hook’s sleep to be gone');
    const log = (await cli('b', ['daemon', 'log', '--json'])).json<{ lines: string[] }>();
    expect(log.lines.some((l) => l.includes(`stdout: hook saw test.hang from ${onions.a}`))).toBe(true);
    // Not lost: in b's inbox once.
    const inbox = (await cli('b', ['inbox', '--type', 'test.hang', '--json'])).json<ReceivedMessage[]>();
    expect(inbox.map((m) => m.id)).toEqual([id]);
  }, 120_000);

  it('outbox list / retry / drop, ping with every round trip and the route', async () => {
    const nobody = AgentKey.random().onion; // an onion no one serves
    const q = await callDaemon<{ id: string; status: string }>(
      home('a'),
      'send',
      {
        onion: nobody,
        text: 'for nobody',
        timeoutMs: 3_000,
      },
      { timeoutMs: 60_000 },
    );
    expect(q.status).toBe('queued');
    const list = (await cli('a', ['outbox', '--json'])).json<PendingMessage[]>();
    expect(list).toEqual([
      expect.objectContaining({
        id: q.id,
        to: nobody,
        type: 'message',
        preview: 'for nobody',
        attempts: expect.any(Number),
      }),
    ]);
    const retried = await cli('a', ['outbox', 'retry', q.id, '--json'], 150_000);
    expect(retried.exitCode, retried.stderr).toBe(0);
    expect(retried.json()).toMatchObject({
      id: q.id,
      status: 'queued',
      error: { code: expect.stringMatching(/^ERR_/) },
    });
    const dropped = await cli('a', ['outbox', 'drop', q.id, '--json']);
    expect(dropped.json()).toEqual({ id: q.id, to: nobody });
    expect((await cli('a', ['outbox', '--json'])).json()).toEqual([]);
    expect(await readdir(join(home('a'), 'outbox'))).not.toContain(`${q.id}.json`);
    const again = await cli('a', ['outbox', 'drop', q.id, '--json']);
    expect([again.exitCode, again.json<{ error: { code: string } }>().error.code]).toEqual([
      EXIT_CODES['not-found'],
      'ERR_NOT_FOUND',
    ]);

    const ping = await cli('a', ['ping', 'bob', '--count', '3', '--json']);
    expect(ping.exitCode, ping.stderr).toBe(0);
    const r = ping.json<{
      peer: { onion: string };
      transport: string;
      suite: string;
      rttsMs: number[];
      rttMs: { min: number; median: number; max: number };
      verified: boolean;
    }>();
    expect(r).toMatchObject({
      peer: { onion: onions.b },
      transport: 'tor',
      suite: 'hybrid-x25519-mlkem768',
      verified: true,
    });
    expect(r.rttsMs).toHaveLength(3);
    expect(r.rttMs.min).toBeLessThanOrEqual(r.rttMs.median);
    expect(r.rttMs.median).toBeLessThanOrEqual(r.rttMs.max);
  }, 240_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 250 ms for at most `ms`. */
async function waitUntil(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}
