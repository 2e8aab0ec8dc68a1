import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import { runCli } from '../helpers/cli.js';
import { liveProcesses } from '../helpers/processes.js';
import { testNetwork } from '../helpers/tor.js';

let root: string;
let network: string;
const A = () => join(root, 'a');
const B = () => join(root, 'b');
const onions: Record<string, string> = {};

async function start(home: string, extra: string[] = []) {
  const r = await runCli(['tor', 'start', '--network', network, '--json', '--config-dir', home, ...extra], {
    timeoutMs: 150_000,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-daemon-'));
  for (const [name, home] of [
    ['a', A()],
    ['b', B()],
  ] as const) {
    const r = await runCli(['init', '--json', '--config-dir', home]);
    onions[name] = r.json<{ onion: string }>().onion;
  }
}, 60_000);

afterAll(async () => {
  for (const home of [A(), B()]) await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

describe('mmogit tor start / status / connect / send / inbox / stop', () => {
  it('starts the daemon with progress on stderr, refuses a second start, reports status', async () => {
    const r = await start(A());
    const out = r.json<{ onion: string; pid: number; socksPort: number; controlPort: number }>();
    expect(out.onion).toBe(onions.a);
    expect(out.pid).toBeGreaterThan(0);
    expect(out.socksPort).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/tor bootstrap \d+%/);
    const bootstrap = onionMultiaddr(
      onions.a!,
      DEFAULT_ONION_VIRTUAL_PORT,
      peerIdFromOnion(onions.a!).toString(),
    );
    await start(B(), ['--bootstrap', bootstrap.toString()]);

    const again = await runCli(['tor', 'start', '--network', network, '--config-dir', A()]);
    expect(again.exitCode).toBe(EXIT_CODES.daemon);
    expect(again.stderr).toContain('already running');

    const status = await runCli(['tor', 'status', '--json', '--config-dir', A()]);
    expect(status.json()).toMatchObject({
      running: true,
      onion: onions.a,
      bootstrap: 100,
      socksPort: out.socksPort,
      onionPort: DEFAULT_ONION_VIRTUAL_PORT,
      pid: out.pid,
    });
  }, 300_000);

  it('connects with a verified identity and delivers messages into the peer’s inbox', async () => {
    const c = await runCli(['tor', 'connect', onions.b!, '--json', '--config-dir', A()], {
      timeoutMs: 120_000,
    });
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.json()).toMatchObject({
      peer: { onion: onions.b },
      transport: 'tor',
      suite: 'hybrid-x25519-mlkem768',
      verified: true,
    });
    const s = await runCli(['send', onions.b!, 'hello from a', '--json', '--config-dir', A()], {
      timeoutMs: 120_000,
    });
    expect(s.exitCode, s.stderr).toBe(0);
    const sent = s.json<{ id: string; status: string }>();
    expect(sent.status).toBe('delivered');
    const inbox = await runCli(['inbox', '--json', '--config-dir', B()]);
    const items =
      inbox.json<{ id: string; from: string; text: string; timestamp: number; verified: boolean }[]>();
    expect(items.filter((m) => m.id === sent.id)).toEqual([
      expect.objectContaining({ from: onions.a, text: 'hello from a', verified: true }),
    ]);
  }, 240_000);

  it('advertises memory_sync, discovers it, and syncs memories both ways', async () => {
    const ad = await runCli(
      ['tor', 'advertise', '--services', 'memory_sync', '--json', '--config-dir', B()],
      {
        timeoutMs: 200_000,
      },
    );
    expect(ad.exitCode, ad.stderr).toBe(0);
    expect(ad.json<{ onion: string; services: string[] }>()).toMatchObject({
      onion: onions.b,
      services: ['memory_sync'],
    });

    let found: { onion: string; verified: boolean }[] = [];
    for (let i = 0; i < 4 && !found.some((f) => f.onion === onions.b); i++) {
      const d = await runCli(
        ['tor', 'discover', 'memory_sync', '--timeout', '20', '--json', '--config-dir', A()],
        {
          timeoutMs: 60_000,
        },
      );
      if (d.exitCode === 0) found = d.json();
      else expect(d.exitCode).toBe(EXIT_CODES['not-found']);
    }
    expect(found).toEqual([expect.objectContaining({ onion: onions.b, verified: true })]);

    expect((await runCli(['remember', '-t', 'learning', 'a knows this', '--config-dir', A()])).exitCode).toBe(
      0,
    );
    expect(
      (await runCli(['remember', '-t', 'observation', 'b saw this', '--config-dir', B()])).exitCode,
    ).toBe(0);
    const shared = await runCli([
      'remember',
      '-t',
      'task',
      'only b may read this',
      '--share',
      onions.b!,
      '--config-dir',
      A(),
    ]);
    expect(shared.exitCode, shared.stderr).toBe(0);
    const sync = await runCli(['sync', onions.b!, '--json', '--config-dir', A()], { timeoutMs: 150_000 });
    expect(sync.exitCode, sync.stderr).toBe(0);
    const [result] =
      sync.json<{ peer: string; sent: number; received: number; head: string; ms: number }[]>();
    expect(result).toMatchObject({ peer: onions.b });
    expect(result!.received).toBeGreaterThanOrEqual(1);
    expect(result!.sent).toBeGreaterThanOrEqual(1);
    // The shared private memory reached B encrypted, and B reads it, verified, as A's.
    const atB = await runCli(['recall', '-t', 'task', '--json', '--config-dir', B()]);
    expect(atB.json<{ author: string; content: string; verified: boolean; visibility: string }[]>()).toEqual([
      expect.objectContaining({
        author: onions.a,
        content: 'only b may read this',
        verified: true,
        visibility: 'private',
      }),
    ]);
    const recalled = await runCli(['recall', '--json', '--config-dir', A()]);
    expect(recalled.json<{ author: string; content: string; verified: boolean }[]>()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ author: onions.b, content: 'b saw this', verified: true }),
      ]),
    );
  }, 400_000);

  it('queues a message for a stopped peer and delivers it once after the peer and the sender restart', async () => {
    const stopped = await runCli(['tor', 'stop', '--json', '--config-dir', B()], { timeoutMs: 60_000 });
    expect(stopped.json()).toMatchObject({ stopped: true });
    expect(liveProcesses(B())).toEqual([]);

    const s = await runCli(['send', onions.b!, 'are you there?', '--json', '--config-dir', A()], {
      timeoutMs: 150_000,
    });
    expect(s.exitCode, s.stderr).toBe(0);
    const queued = s.json<{ id: string; status: string }>();
    expect(queued.status).toBe('queued');

    // The sender's daemon restarts too: the outbox is on disk, so nothing is lost.
    await runCli(['tor', 'stop', '--config-dir', A()], { timeoutMs: 60_000 });
    await start(A());
    await start(B());
    let delivered: { id: string; text: string }[] = [];
    for (let i = 0; i < 90 && delivered.length === 0; i++) {
      const inbox = await runCli(['inbox', '--json', '--config-dir', B()]);
      delivered = inbox.json<{ id: string; text: string }[]>().filter((m) => m.id === queued.id);
      if (delivered.length === 0) await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(delivered).toEqual([expect.objectContaining({ text: 'are you there?' })]);
  }, 400_000);

  it('stops gracefully, idempotently, and leaves no process behind', async () => {
    for (const home of [A(), B()]) {
      const r = await runCli(['tor', 'stop', '--json', '--config-dir', home], { timeoutMs: 60_000 });
      expect(r.exitCode).toBe(0);
      const again = await runCli(['tor', 'stop', '--json', '--config-dir', home]);
      expect(again.json()).toMatchObject({ stopped: false, running: false });
      expect(liveProcesses(home)).toEqual([]);
    }
  }, 180_000);
});
