// Attach mode (the user's own tor, `--tor-control`): when that tor dies the agent says it is waiting (status,
// event, stderr), and when the user's tor comes back on the same control port the agent reconnects by itself,
// publishes its onion again and is reachable from another tor.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { DEFAULT_ONION_VIRTUAL_PORT } from '../../src/tor/onion-service.js';
import { startTestTor } from '../helpers/tor.js';
import { reachable, until } from './_helpers.js';

let root: string;
let users: TorHandle[] = [];
let stranger: TorHandle;
let carol: Agent;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-attach-'));
  // "The user's tor": the test owns it and does not let it restart itself.
  users = [await startTestTor(root, { name: 'user-tor', restart: false })];
  stranger = await startTestTor(root, { name: 'stranger' });
  carol = (await Agent.init({ configDir: join(root, 'carol') })).agent;
  await carol.start({
    torControl: `127.0.0.1:${users[0]!.controlPort}`,
    networkBootstrap: false,
    timeoutMs: 90_000,
    selfProbe: { firstProbeMs: 0, intervalMs: 2_000, retryMs: 1_000, timeoutMs: 10_000 },
  });
}, 200_000);

afterAll(async () => {
  await carol?.close();
  for (const t of [...users, stranger]) await t?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('attach mode', () => {
  it('waits for the user’s tor while it is gone, then reconnects and publishes the onion again', async () => {
    const first = users[0]!;
    const { socksPort, controlPort } = first;
    const health = () => carol.net().status().health;
    expect(health().state).toBe('up');
    process.kill(first.pid!, 'SIGKILL');

    const waiting = await until(() => health().state === 'waiting' && health().waiting, 10_000, 'waiting');
    expect(waiting.control).toBe(`127.0.0.1:${controlPort}`);
    await until(() => (health().waiting?.attempts ?? 0) >= 2, 10_000, 'a second attempt');
    expect(
      carol
        .net()
        .status()
        .events.some((e) => e.type === 'tor-waiting'),
    ).toBe(true);
    expect(carol.running).toBe(true);

    // The user brings tor back: same data dir, same ports.
    const t0 = Date.now();
    users.push(await startTestTor(root, { name: 'user-tor', restart: false, socksPort, controlPort }));
    await until(() => health().state === 'up', 60_000, 'the reconnection');
    expect(health().restarts).toBe(1);
    // onions/current lists the onions of the asking connection: carol's new one.
    expect(await carol.net().tor.controller.getInfo('onions/current')).toContain(carol.key.serviceId);
    await until(
      () => reachable(stranger.socksPort, carol.address, DEFAULT_ONION_VIRTUAL_PORT, 10_000),
      60_000,
      "carol's onion from another tor",
      0,
    );
    console.log(`[reliability] attach mode: user's tor back -> onion reachable in ${Date.now() - t0} ms`);
    const rec = await until(() => health().lastRecovery, 60_000, 'the recovery time');
    expect(rec.ms).toBeGreaterThan(0);
  }, 180_000);
});
