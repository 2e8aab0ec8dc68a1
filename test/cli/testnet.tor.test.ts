import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { runCli } from '../helpers/cli.js';
import { liveProcesses } from '../helpers/processes.js';

let root: string;
const net = () => join(root, 'net');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-testnet-cli-'));
});
afterAll(async () => {
  for (const a of ['a', 'b']) await runCli(['tor', 'stop', '--config-dir', join(root, a)]).catch(() => {});
  await runCli(['testnet', 'down', '--dir', net()]).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

it('brings a network up with a bootstrap agent; agents with only --network discover each other; down stops all', async () => {
  const up = await runCli(['testnet', 'up', '--dir', net(), '--json'], { timeoutMs: 240_000 });
  expect(up.exitCode, up.stderr).toBe(0);
  const info = up.json<{ authorities: unknown[]; bootstrapPeers: string[]; clientTorrc: string[] }>();
  expect(info.authorities.length).toBeGreaterThanOrEqual(4);
  expect(info.bootstrapPeers).toHaveLength(1);
  expect(info.bootstrapPeers[0]).toMatch(/^\/onion3\/[a-z2-7]{56}:4001\/p2p\/12D3Koo/);
  expect(JSON.parse(await readFile(join(net(), 'network.json'), 'utf8')).bootstrapPeers).toEqual(
    info.bootstrapPeers,
  );

  const status = await runCli(['testnet', 'status', '--dir', net(), '--json']);
  const s = status.json<{ running: boolean; processes: { alive: boolean }[] }>();
  expect(s.running).toBe(true);
  expect(s.processes.every((p) => p.alive)).toBe(true);

  const again = await runCli(['testnet', 'up', '--dir', net()], { timeoutMs: 60_000 });
  expect(again.exitCode).toBe(EXIT_CODES.tor);

  const onions: string[] = [];
  for (const a of ['a', 'b']) {
    const home = join(root, a);
    onions.push((await runCli(['init', '--json', '--config-dir', home])).json<{ onion: string }>().onion);
    const started = await runCli(['tor', 'start', '--network', net(), '--config-dir', home], {
      timeoutMs: 150_000,
    });
    expect(started.exitCode, started.stderr).toBe(0);
  }
  const ad = await runCli(
    ['tor', 'advertise', '--services', 'memory_sync', '--json', '--config-dir', join(root, 'b')],
    {
      timeoutMs: 200_000,
    },
  );
  expect(ad.exitCode, ad.stderr).toBe(0);
  let found: { onion: string }[] = [];
  for (let i = 0; i < 5 && found.length === 0; i++) {
    const d = await runCli(
      ['tor', 'discover', 'memory_sync', '--timeout', '20', '--json', '--config-dir', join(root, 'a')],
      {
        timeoutMs: 60_000,
      },
    );
    if (d.exitCode === 0) found = d.json();
  }
  expect(found.map((f) => f.onion)).toContain(onions[1]);

  for (const a of ['a', 'b'])
    expect((await runCli(['tor', 'stop', '--config-dir', join(root, a)])).exitCode).toBe(0);
  const down = await runCli(['testnet', 'down', '--dir', net(), '--json'], { timeoutMs: 60_000 });
  expect(down.exitCode).toBe(0);
  expect(down.json<{ stopped: number; agents: number }>()).toMatchObject({ agents: 1 });
  expect(down.json<{ stopped: number }>().stopped).toBeGreaterThanOrEqual(4);
  expect(liveProcesses(root)).toEqual([]);
  const downAgain = await runCli(['testnet', 'down', '--dir', net(), '--json']);
  expect(downAgain.exitCode).toBe(0);
  expect(downAgain.json<{ stopped: number }>().stopped).toBe(0);
}, 600_000);
