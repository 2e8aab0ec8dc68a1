// Agent tors on the run's private Tor network (test/global-setup.ts): spawn and attach modes, onion
// publication, two agents exchanging bytes, restart after SIGKILL, and the failures a user can meet.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { isAlive } from '../../src/tor/_process.js';
import { attachTor, type TorHandle } from '../../src/tor/daemon.js';
import { DEFAULT_ONION_VIRTUAL_PORT, publishOnion } from '../../src/tor/onion-service.js';
import { dialOnion } from '../../src/tor/socks.js';
import { startTestTor } from '../helpers/tor.js';

let tmp: string;
const handles: TorHandle[] = [];
const servers: net.Server[] = [];

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-tor-test-'));
});
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.stop()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await rm(tmp, { recursive: true, force: true });
});

async function tor(name: string, extra: Parameters<typeof startTestTor>[1] = {}): Promise<TorHandle> {
  const h = await startTestTor(tmp, { name, ...extra });
  handles.push(h);
  return h;
}

/** A TCP server on 127.0.0.1 that sends `tag` once, when a connection's first bytes arrive, then echoes. */
async function echoServer(tag: string): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.write(tag));
    s.on('data', (d) => s.write(d));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function roundTrip(socket: net.Socket, payload: Buffer, expectedLength: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= expectedLength) resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
  });
  socket.write(payload);
  return done;
}

function codeOf(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

describe('agent tor on the private network', () => {
  it('two agents publish their onions and exchange bytes through each other', async () => {
    const progress: number[] = [];
    const [a, b] = await Promise.all([tor('a', { onProgress: (p) => progress.push(p.progress) }), tor('b')]);
    expect(progress.at(-1)).toBe(100);
    expect(a.mode).toBe('spawn');
    expect(a.socksPort).toBeGreaterThan(0);
    expect(a.pid).toBeGreaterThan(0);
    expect(await a.controller.getInfo('status/bootstrap-phase')).toMatch(/PROGRESS=100/);

    const keyA = AgentKey.random();
    const keyB = AgentKey.random();
    const [svcA, svcB] = await Promise.all([
      publishOnion(a, keyA, { targetPort: await echoServer('A:') }),
      publishOnion(b, keyB, { targetPort: await echoServer('B:') }),
    ]);
    expect(svcA.onion).toBe(keyA.onion);
    expect(svcA.virtualPort).toBe(DEFAULT_ONION_VIRTUAL_PORT);
    expect(svcA.uploadMs).toBeGreaterThan(0);
    expect(svcA.publishMs).toBeGreaterThanOrEqual(svcA.uploadMs!);

    const payload = randomBytes(4096);
    // a → b's onion through a's own SOCKS port, and b → a's through b's.
    const ab = await dialOnion(
      { socksPort: a.socksPort, onion: svcB.onion, port: 4001, retry: {} },
      { timeoutMs: 30_000 },
    );
    const ba = await dialOnion(
      { socksPort: b.socksPort, onion: svcA.onion, port: 4001, retry: {} },
      { timeoutMs: 30_000 },
    );
    try {
      const fromB = await roundTrip(ab, payload, payload.length + 2);
      expect(fromB.subarray(0, 2).toString()).toBe('B:');
      expect(Buffer.compare(fromB.subarray(2), payload)).toBe(0);
      const fromA = await roundTrip(ba, Buffer.from('ping'), 6);
      expect(fromA.toString()).toBe('A:ping');
    } finally {
      ab.destroy();
      ba.destroy();
    }

    await svcA.remove();
    await svcA.remove(); // idempotent
    expect(await a.controller.getInfo('onions/current')).not.toContain(keyA.serviceId);
  });

  it('stop leaves no tor process behind, and is idempotent', async () => {
    const a = await tor('a');
    const pid = a.pid!;
    expect(isAlive(pid)).toBe(true);
    await a.stop();
    expect(isAlive(pid)).toBe(false);
    expect(a.running).toBe(false);
    await a.stop();
  });

  it('tor killed with SIGKILL under a running agent comes back with the same onion', async () => {
    const [a, b] = await Promise.all([tor('a'), tor('b')]);
    const key = AgentKey.random();
    const svc = await publishOnion(a, key, { targetPort: await echoServer('A:') });
    const oldPid = a.pid!;
    const socksPort = a.socksPort;
    const died = new Promise((r) => a.once('died', r));
    const restarted = new Promise<{ republished: string[]; attempt: number }>((r) => a.once('restarted', r));
    process.kill(oldPid, 'SIGKILL');
    expect(await died).toMatchObject({ signal: 'SIGKILL', willRestart: true });
    const ev = await restarted;
    expect(ev.attempt).toBe(1);
    expect(ev.republished).toEqual([svc.serviceId]);
    expect(a.pid).not.toBe(oldPid);
    expect(a.socksPort).toBe(socksPort); // same port, so dialers holding it keep working
    expect(await a.controller.getInfo('onions/current')).toContain(key.serviceId);

    const s = await dialOnion(
      { socksPort: b.socksPort, onion: key.onion, port: 4001, retry: { attempts: 8 } },
      { timeoutMs: 45_000 },
    );
    try {
      expect((await roundTrip(s, Buffer.from('again'), 7)).toString()).toBe('A:again');
    } finally {
      s.destroy();
    }
  });

  it('publishing the same onion twice on one tor is a typed error', async () => {
    const a = await tor('a');
    const key = AgentKey.random();
    const port = await echoServer('A:');
    await publishOnion(a, key, { targetPort: port, waitForUpload: false });
    await expect(publishOnion(a, key, { targetPort: port })).rejects.toMatchObject({
      code: 'ERR_TOR_ONION_PUBLISH',
    });
    await expect(publishOnion(a, AgentKey.random(), { targetPort: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('an onion nobody publishes fails with a typed SOCKS error within the timeout', async () => {
    const a = await tor('a');
    const t0 = Date.now();
    const err = await dialOnion(
      { socksPort: a.socksPort, onion: AgentKey.random().onion, port: 4001, retry: { attempts: 2 } },
      { timeoutMs: 20_000 },
    ).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(30_000); // two attempts of tor's own 120 s circuit timeout without ours
    expect(['ERR_SOCKS', 'ERR_TIMEOUT']).toContain(codeOf(err));
  });

  it('an invalid onion is refused before any network use', async () => {
    const a = await tor('a');
    await expect(
      dialOnion({ socksPort: a.socksPort, onion: 'notanonion.onion', port: 4001 }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
  });
});

describe('attach mode', () => {
  it('attaches with the right password, refuses a wrong password or cookie, and leaves tor running', async () => {
    const hashed = execFileSync('tor', ['--hash-password', 'right horse'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    const owner = await tor('owner', { extraTorrc: [`HashedControlPassword ${hashed}`] });
    const control = `127.0.0.1:${owner.controlPort}`;

    await expect(attachTor({ control, password: 'wrong horse', timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ERR_TOR_AUTH_FAILED',
    });
    const badCookie = join(tmp, 'bad-cookie');
    await writeFile(badCookie, randomBytes(32));
    await expect(attachTor({ control, cookieFile: badCookie, timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ERR_TOR_AUTH_FAILED',
    });

    const attached = await attachTor({ control, password: 'right horse', timeoutMs: 10_000 });
    expect(attached.mode).toBe('attach');
    expect(attached.socksPort).toBe(owner.socksPort);
    const key = AgentKey.random();
    await publishOnion(attached, key, { targetPort: await echoServer('X:') });
    expect(await owner.controller.getInfo('onions/current').catch(() => '')).not.toContain(key.serviceId); // per connection
    await attached.stop();
    await attached.stop();
    expect(owner.running).toBe(true);
    expect(await owner.controller.getInfo('status/bootstrap-phase')).toMatch(/PROGRESS=100/);
  });

  it('a control port nobody listens on fails fast with a typed error', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((r) => server.close(r));
    const err = await attachTor({ control: `127.0.0.1:${port}`, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('ERR_TOR_CONTROL_CLOSED');
  });
});

describe('start failures', () => {
  it('a missing tor binary is ERR_TOR_NOT_FOUND', async () => {
    await expect(startTestTor(tmp, { torBinary: '/nonexistent/bin/tor' })).rejects.toMatchObject({
      code: 'ERR_TOR_NOT_FOUND',
    });
  });

  it('a SOCKS port in use is ERR_PORT_IN_USE and no tor is left behind', async () => {
    const blocker = net.createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const err = await startTestTor(tmp, { socksPort: port, timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('ERR_PORT_IN_USE');
    expect((err as { details?: { address?: string } }).details?.address).toBe(`127.0.0.1:${port}`);
  });

  it('an aborted start stops the tor it spawned', async () => {
    const ac = new AbortController();
    const started = startTestTor(tmp, { signal: ac.signal, onProgress: () => ac.abort() });
    await expect(started).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
