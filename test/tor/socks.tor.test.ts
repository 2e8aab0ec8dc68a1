// SOCKS against a real tor whose only directory authority is a dead loopback port: its SocksPort is open
// (with ExtendedErrors) but it never builds a circuit, so it shows tor's own replies for bad addresses and
// that a dial to an onion nobody publishes ends typed within our timeout rather than hanging.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/index.js';
import { type HsDescEvent, type StreamEvent, TorController } from '../../src/tor/control/index.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { dialOnion, isolationCredentials, newnym, socksConnect } from '../../src/tor/socks.js';
import { startTestTor as startAgentTor } from '../helpers/tor.js';
import { startTestTor, type TestTor } from './control/_tor.js';

describe('SOCKS through a real tor', () => {
  let tor: TestTor;
  let control: TorController;
  let socksPort: number;

  beforeAll(async () => {
    tor = await startTestTor({ mode: 'loopback' });
    control = await TorController.connect(tor.control);
    await control.authenticate();
    const [listener] = await control.socksListeners();
    socksPort = listener!.port;
  });
  afterAll(async () => {
    await control?.close();
    await tor?.stop();
  });

  it('tor answers an onion with a bad checksum with extended reply 0xF6', async () => {
    const t0 = Date.now();
    await expect(
      socksConnect({ socksPort, host: `${'a'.repeat(56)}.onion`, port: 80 }, { timeoutMs: 10_000 }),
    ).rejects.toMatchObject({
      code: 'ERR_SOCKS',
      reply: 0xf6,
      details: expect.objectContaining({ stage: 'reply' }),
    });
    expect(Date.now() - t0).toBeLessThan(8_000); // under the 10 s timeout: the reply ended it
  });

  it('dialOnion refuses the same address itself, before asking tor', async () => {
    await expect(dialOnion({ socksPort, onion: 'a'.repeat(56), port: 80 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
  });

  it('an onion nobody publishes: typed error within the timeout, no hang', async () => {
    const t0 = Date.now();
    await expect(
      dialOnion({ socksPort, onion: AgentKey.random().onion, port: 80, retry: {} }, { timeoutMs: 2000 }),
    ).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('tor sees a different SOCKS username per peer (stream isolation)', async () => {
    const ac = new AbortController();
    const streams: StreamEvent[] = [];
    const done = (async () => {
      for await (const e of control.events(ac.signal))
        if (e.type === 'STREAM' && e.status === 'NEW') streams.push(e);
    })();
    await control.setEvents(['STREAM']);
    const a = AgentKey.random().onion;
    const b = AgentKey.random().onion;
    await Promise.allSettled([
      dialOnion({ socksPort, onion: a, port: 80 }, { timeoutMs: 1500 }),
      dialOnion({ socksPort, onion: b, port: 80 }, { timeoutMs: 1500 }),
    ]);
    ac.abort();
    await done;
    await control.setEvents([]);
    const byTarget = (onion: string) => streams.find((s) => s.target === `${onion}:80`);
    // tor reports the SOCKS credentials of each stream (control-spec §4.1.2 SOCKS_USERNAME).
    expect(byTarget(a)?.args.SOCKS_USERNAME).toBe(isolationCredentials(a.slice(0, -6)).userId);
    expect(byTarget(b)?.args.SOCKS_USERNAME).toBe(isolationCredentials(b.slice(0, -6)).userId);
    expect(byTarget(a)?.args.SOCKS_USERNAME).not.toBe(byTarget(b)?.args.SOCKS_USERNAME);
  });

  it('newnym asks tor for fresh circuits (SIGNAL NEWNYM)', async () => {
    await expect(newnym(control)).resolves.toBeUndefined();
  });
});

describe('dialOnion on the private Tor network (test/global-setup.ts)', () => {
  let dir: string;
  const tors: TorHandle[] = [];
  let echo: net.Server;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mmogit-socks-'));
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await Promise.all(tors.map((t) => t.stop()));
    await new Promise((r) => echo.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches an onion published with our key through our controller, retrying until its descriptor is up', async () => {
    const [service, client] = await Promise.all([
      startAgentTor(dir, { name: 'service' }),
      startAgentTor(dir, { name: 'client' }),
    ]);
    tors.push(service, client);
    const key = AgentKey.random();
    const ac = new AbortController();
    const uploaded = new Promise<HsDescEvent>((resolve) => {
      void (async () => {
        for await (const e of service.controller.events(ac.signal)) {
          if (e.type === 'HS_DESC' && e.action === 'UPLOADED') return resolve(e);
        }
      })();
    });
    await service.controller.setEvents(['HS_DESC']);
    const port = (echo.address() as net.AddressInfo).port;
    const { serviceId } = await service.controller.addOnion({
      key: key.addOnionKey(),
      ports: [{ virtualPort: 4001, target: `127.0.0.1:${port}` }],
    });
    expect(serviceId).toBe(key.serviceId);
    // Dial at once: the first attempts may get reply 4/0xF0 (descriptor not there yet); retry covers it.
    const sock = await dialOnion(
      {
        socksPort: client.socksPort,
        onion: key.onion,
        port: 4001,
        retry: { attempts: 20, baseDelayMs: 500 },
      },
      { timeoutMs: 60_000 },
    );
    const reply = await new Promise<string>((resolve, reject) => {
      sock.once('data', (d) => resolve(d.toString()));
      sock.once('error', reject);
      sock.write('ping over tor');
    });
    sock.destroy();
    expect(reply).toBe('ping over tor');
    const up = await uploaded;
    ac.abort();
    expect(up).toMatchObject({
      address: key.serviceId,
      authType: 'UNKNOWN',
      hsDir: expect.stringMatching(/^\$[0-9A-F]{40}/),
    });
  });
});
