// The private network's pure parts: torrc builders and network.json, without starting a tor.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNetwork, type TestnetAuthority, writeNetwork } from '../../src/tor/testnet-network.js';
import {
  authorityLines,
  bridgeLines,
  clientLines,
  probeLines,
  serverLines,
} from '../../src/tor/testnet-torrc.js';

const auth: TestnetAuthority = {
  nickname: 'auth000',
  orPort: 5000,
  dirPort: 5001,
  v3ident: 'A'.repeat(40),
  fingerprint: 'B'.repeat(40),
};

describe('testnet torrc builders', () => {
  it('give clients the network and its authorities, servers their own ports, owners and roles', () => {
    const client = clientLines('/net dir', [auth]);
    expect(client).toContain('TestingTorNetwork 1');
    expect(client).toContain(
      `DirAuthority auth000 orport=5000 no-v2 v3ident=${'A'.repeat(40)} 127.0.0.1:5001 ${'B'.repeat(40)}`,
    );
    expect(client).toContain('GeoIPFile "/net dir/empty"');

    const server = serverLines('/n', [auth], {
      nickname: 'relay000',
      orPort: 6000,
      dataDir: '/n/nodes/r',
      ownerPid: 42,
    });
    expect(server).toEqual(
      expect.arrayContaining(['Nickname relay000', 'ORPort 127.0.0.1:6000', 'SocksPort 0']),
    );
    expect(server).toContain('__OwningControllerProcess 42');
    expect(serverLines('/n', [auth], { nickname: 'r', orPort: 1, dataDir: '/d' }).join('\n')).not.toContain(
      '__OwningControllerProcess',
    );
    expect(authorityLines(5001)).toContain('DirPort 127.0.0.1:5001');
    expect(bridgeLines('/usr/bin/obfs4proxy', 7000)).toContain(
      'ServerTransportListenAddr obfs4 127.0.0.1:7000',
    );
    const probe = probeLines(client, '/n/probe', 7);
    expect(probe.slice(0, client.length)).toEqual(client);
    expect(probe).toEqual(expect.arrayContaining(['ClientOnly 1', '__OwningControllerProcess 7']));
    // every line is one torrc line
    for (const l of [...server, ...probe]) expect(l).not.toMatch(/[\r\n]/);
  });
});

describe('network.json', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mmogit-netfile-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips what testnetUp writes, readable by other users', async () => {
    const info = {
      dir,
      clientTorrc: clientLines(dir, [auth]),
      authorities: [auth],
      relays: [{ nickname: 'relay000', orPort: 6000, fingerprint: 'C'.repeat(40) }],
    };
    await writeNetwork(info);
    expect(await loadNetwork(dir)).toEqual(info);
    expect((await stat(join(dir, 'network.json'))).mode & 0o077 & ~0o044).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'network.json'), 'utf8')).version).toBe(1);
  });

  it('refuses authorities and relays of the wrong shape', async () => {
    const base = { version: 1, clientTorrc: clientLines(dir, [auth]), authorities: [auth], relays: [] };
    for (const bad of [
      { ...base, authorities: [{ ...auth, dirPort: 'x' }] },
      { ...base, authorities: [{ nickname: 'a' }] },
      { ...base, authorities: {} },
      { ...base, relays: [{ nickname: 'r', orPort: 70000, fingerprint: 'F' }] },
    ]) {
      await writeFile(join(dir, 'network.json'), JSON.stringify(bad));
      await expect(loadNetwork(dir)).rejects.toMatchObject({ code: 'ERR_NETWORK_CONFIG' });
    }
  });
});
