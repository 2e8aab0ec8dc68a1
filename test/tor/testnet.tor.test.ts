// The run's private Tor network itself (started by test/global-setup.ts), and an obfs4 bridge on it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TorHandle } from '../../src/tor/daemon.js';
import { testnetDown, testnetStatus, testnetUp } from '../../src/tor/testnet.js';
import { startTestTor, testNetwork } from '../helpers/tor.js';

let tmp: string;
const handles: TorHandle[] = [];
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-testnet-test-'));
});
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.stop()));
  await rm(tmp, { recursive: true, force: true });
});

describe('private Tor network', () => {
  it('runs at least 4 relays in the consensus, all recorded processes alive', async () => {
    const net = await testNetwork();
    const status = await testnetStatus({ dir: net.dir });
    expect(status.running).toBe(true);
    expect(status.processes.length).toBeGreaterThanOrEqual(4);
    expect(status.processes.every((p) => p.alive)).toBe(true);
    expect(net.clientTorrc).toContain('TestingTorNetwork 1');

    const a = await startTestTor(tmp, { name: 'a' });
    handles.push(a);
    const consensus = await a.controller.getInfo('ns/all');
    const relays = consensus.split('\n').filter((l) => l.startsWith('r '));
    expect(relays.length).toBeGreaterThanOrEqual(4);
    for (const auth of net.authorities) {
      expect(consensus).toContain(` ${auth.nickname} `);
    }
  });

  it('refuses a second testnet up in a running network dir, and down on an empty dir stops nothing', async () => {
    const net = await testNetwork();
    await expect(testnetUp({ dir: net.dir, timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'ERR_TESTNET',
    });
    expect((await testnetStatus({ dir: net.dir })).running).toBe(true); // untouched
    expect(await testnetDown({ dir: tmp })).toEqual({ stopped: 0 });
    expect((await testnetStatus({ dir: tmp })).running).toBe(false);
  });

  it('an agent reaches the network through the obfs4 bridge', async (ctx) => {
    const net = await testNetwork();
    if (!net.bridges?.length) ctx.skip(); // obfs4proxy/lyrebird not installed
    const a = await startTestTor(tmp, { name: 'bridged', useBridges: true });
    handles.push(a);
    const conf = await a.controller.getConf('UseBridges');
    expect(conf).toEqual(['1']);
    const guards = await a.controller.getInfo('entry-guards');
    const bridgeFp = net.bridges![0]!.split(' ')[2]!;
    expect(guards).toContain(`$${bridgeFp}`);
  });
});
