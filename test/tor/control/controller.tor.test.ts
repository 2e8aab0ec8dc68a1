import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../../src/identity/index.js';
import { readControlPortFile, TorController, type TorEvent } from '../../../src/tor/control/index.js';
import { startTestTor, type TestTor } from './_tor.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe('TorController against a real tor (cookie auth, DisableNetwork 1)', () => {
  let tor: TestTor;
  const open: TorController[] = [];
  const connect = async (): Promise<TorController> => {
    const c = await TorController.connect(tor.control);
    open.push(c);
    return c;
  };
  const authed = async (): Promise<TorController> => {
    const c = await connect();
    await c.authenticate();
    return c;
  };

  beforeAll(async () => {
    tor = await startTestTor({ mode: 'offline', unixSocket: true });
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close()));
    await tor?.stop();
  });

  it('reads the control port file tor wrote', async () => {
    await expect(readControlPortFile(join(tor.dir, 'control.port'))).resolves.toEqual(tor.control);
  });

  it('PROTOCOLINFO lists the cookie methods, cookie file and version', async () => {
    const c = await connect();
    const info = await c.protocolInfo();
    expect(info.authMethods).toEqual(['COOKIE', 'SAFECOOKIE']);
    expect(info.cookieFile).toBe(tor.cookieFile);
    expect(info.torVersion).toMatch(/^0\.4\./);
  });

  it('refuses commands before authentication with a typed 514', async () => {
    const c = await connect();
    await expect(c.getInfo('version')).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_OPERATION',
      details: expect.objectContaining({ statusCode: 514 }),
    });
  });

  it('authenticates with SAFECOOKIE (the only cookie method we use; tor offers it beside COOKIE)', async () => {
    const a = await connect();
    await a.authenticate();
    await expect(a.getInfo('version')).resolves.toMatch(/^0\.4\./);
  });

  it('authenticates over the Unix control socket', async () => {
    const c = await TorController.connect({ path: tor.controlSocket! });
    open.push(c);
    await c.authenticate();
    await expect(c.getInfo('version')).resolves.toMatch(/^0\.4\./);
  });

  it('detects a wrong cookie by the server hash, before sending anything', async () => {
    const wrong = join(tor.dir, 'wrong-cookie');
    await writeFile(wrong, randomBytes(32));
    const a = await connect();
    await expect(a.authenticate({ cookieFile: wrong })).rejects.toMatchObject({
      code: 'ERR_TOR_AUTH_FAILED',
      details: { reason: 'server-hash-mismatch' },
    });
    await a.closed; // we drop a control port that failed the server hash
  });

  it('fails typed on an unreadable or short cookie, and on methods tor does not offer', async () => {
    const short = join(tor.dir, 'short-cookie');
    await writeFile(short, randomBytes(16));
    await expect((await connect()).authenticate({ cookieFile: short })).rejects.toThrow(
      code('ERR_TOR_AUTH_FAILED'),
    );
    await expect((await connect()).authenticate({ cookieFile: join(tor.dir, 'nope') })).rejects.toThrow(
      code('ERR_TOR_AUTH_FAILED'),
    );
    await expect((await connect()).authenticate({ password: 'x' })).rejects.toThrow(
      code('ERR_TOR_AUTH_UNSUPPORTED'),
    );
    await expect((await connect()).authenticate({ method: 'NULL' })).rejects.toThrow(
      code('ERR_TOR_AUTH_UNSUPPORTED'),
    );
  });

  it('GETINFO: single, many, multi-line and unknown keys', async () => {
    const c = await authed();
    const many = await c.getInfoMany(['version', 'config-text', 'net/listeners/socks']);
    expect(many['config-text']).toContain('DisableNetwork 1\n');
    expect(many['config-text']?.split('\n').length).toBeGreaterThan(5);
    expect(many['net/listeners/socks']).toBe('');
    await expect(c.getInfo('no-such-key')).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_OPERATION',
      details: expect.objectContaining({ statusCode: 552 }),
    });
    await expect(c.getInfo('bad key')).rejects.toThrow(code('ERR_INVALID_ARGUMENT'));
  });

  it('SETCONF / GETCONF / RESETCONF round trip, with quoting and multi-valued options', async () => {
    const c = await authed();
    await c.setConf({ MaxCircuitDirtiness: '1234', Nickname: 'mmogitTest' });
    expect(await c.getConf('MaxCircuitDirtiness')).toEqual(['1234']);
    expect(await c.getConf('Nickname')).toEqual(['mmogitTest']);
    // A line-list option: one K=V per value, values with spaces quoted.
    await c.setConf({ ReachableAddresses: ['accept *:80', 'accept *:443'] });
    expect(await c.getConf('ReachableAddresses')).toEqual(['accept *:80', 'accept *:443']);
    await c.setConf({ ReachableAddresses: [] });
    expect(await c.getConf('ReachableAddresses')).toEqual([]);
    await c.resetConf(['MaxCircuitDirtiness']);
    expect(await c.getConf('MaxCircuitDirtiness')).toEqual(['600']);
    await c.setConf({ Nickname: null });
    expect(await c.getConf('Nickname')).not.toEqual(['mmogitTest']);
    await expect(c.setConf({ NoSuchOption: '1' })).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_OPERATION',
      details: expect.objectContaining({ statusCode: 552 }),
    });
    await expect(c.setConf({ 'Bad Key': '1' })).rejects.toThrow(code('ERR_INVALID_ARGUMENT'));
  });

  it('ADD_ONION with our key gives our ServiceID; NEW keys, flags, DEL_ONION', async () => {
    const c = await authed();
    const key = AgentKey.random();
    const ours = await c.addOnion({
      key: key.addOnionKey(),
      ports: [{ virtualPort: 80, target: '127.0.0.1:9' }],
    });
    expect(ours).toEqual({ serviceId: key.serviceId });
    expect((await c.getInfo('onions/current')).split('\n')).toContain(key.serviceId);

    const fresh = await c.addOnion({
      key: 'NEW:ED25519-V3',
      ports: [{ virtualPort: 1, target: '127.0.0.1:9' }],
    });
    expect(fresh.serviceId).toMatch(/^[a-z2-7]{56}$/);
    expect(fresh.privateKey).toMatch(/^ED25519-V3:[A-Za-z0-9+/]{86}==$/);

    const detached = await c.addOnion({
      key: 'NEW:ED25519-V3',
      flags: ['Detach', 'DiscardPK'],
      ports: [{ virtualPort: 1, target: '127.0.0.1:9' }],
    });
    expect(detached.privateKey).toBeUndefined();
    const other = await authed();
    expect((await other.getInfo('onions/detached')).split('\n')).toContain(detached.serviceId);
    await other.delOnion(detached.serviceId);

    await c.delOnion(`${ours.serviceId}.onion`);
    await expect(c.delOnion(ours.serviceId)).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_OPERATION',
      details: expect.objectContaining({ statusCode: 552 }),
    });
    await expect(
      c.addOnion({ key: 'ED25519-V3:AAAA', ports: [{ virtualPort: 80, target: '127.0.0.1:9' }] }),
    ).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_OPERATION',
      details: expect.objectContaining({ statusCode: 512 }),
    });
    await expect(
      c.addOnion({ key: 'NEW:ED25519-V3', ports: [{ virtualPort: 80, target: 'a\r\nSIGNAL HALT' }] }),
    ).rejects.toThrow(code('ERR_INVALID_ARGUMENT'));
    await expect(c.delOnion('not-an-onion')).rejects.toThrow(code('ERR_INVALID_ONION'));
  });

  it('SIGNAL NEWNYM answers OK; an unknown signal is refused by tor', async () => {
    const c = await authed();
    await c.signal('NEWNYM');
    await expect(c.signal('BOGUS' as 'NEWNYM')).rejects.toMatchObject({ code: 'ERR_TOR_CONTROL_OPERATION' });
  });

  it('fails calls on a closed controller and ends its event stream', async () => {
    const c = await authed();
    const events = c.events();
    await c.close();
    await expect(c.getInfo('version')).rejects.toThrow(code('ERR_TOR_CONTROL_CLOSED'));
    await expect(events.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('times out a connect that cannot finish, and fails typed on a closed port', async () => {
    const dead = await startTestTor({ mode: 'offline' });
    const port = dead.control.port;
    await dead.stop();
    await expect(TorController.connect({ host: '127.0.0.1', port })).rejects.toThrow(
      code('ERR_TOR_CONTROL_CLOSED'),
    );
    const ac = new AbortController();
    ac.abort();
    await expect(TorController.connect(tor.control, { signal: ac.signal })).rejects.toThrow(
      code('ERR_ABORTED'),
    );
  });
});

describe('TorController against a real tor (password auth, loopback-only network)', () => {
  let tor: TestTor;
  const open: TorController[] = [];
  beforeAll(async () => {
    tor = await startTestTor({ mode: 'loopback', password: 'open sesame "quoted"' });
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close()));
    await tor?.stop();
  });
  const connect = async (): Promise<TorController> => {
    const c = await TorController.connect(tor.control);
    open.push(c);
    return c;
  };

  it('authenticates with the password (quoted per control-spec §2.1)', async () => {
    const c = await connect();
    expect((await c.protocolInfo()).authMethods).toEqual(['HASHEDPASSWORD']);
    await c.authenticate({ password: 'open sesame "quoted"' });
    const socks = await c.socksListeners();
    expect(socks).toHaveLength(1);
    expect(socks[0]?.host).toBe('127.0.0.1');
  });

  it('fails typed on a wrong or missing password', async () => {
    await expect((await connect()).authenticate({ password: 'wrong' })).rejects.toMatchObject({
      code: 'ERR_TOR_AUTH_FAILED',
      details: expect.objectContaining({ statusCode: 515 }),
    });
    await expect((await connect()).authenticate()).rejects.toThrow(code('ERR_TOR_AUTH_UNSUPPORTED'));
  });

  it('streams typed events; waitForBootstrap reports RECOMMENDATION=ignore problems without failing', async () => {
    // A real RECOMMENDATION=warn needs ~10 refusals under tor's growing backoff (minutes), so the
    // fail-on-warn path is tested in controller.test.ts by replaying tor's captured event.
    const c = await connect();
    await c.authenticate({ password: 'open sesame "quoted"' });
    const ac = new AbortController();
    const seen: TorEvent[] = [];
    const stream = c.events(ac.signal);
    await c.setEvents(['STATUS_CLIENT', 'STREAM']);
    const steps: { progress: number; recommendation?: string }[] = [];
    const err = await c
      .waitForBootstrap({ timeoutMs: 4000, onProgress: (s) => steps.push(s) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(steps.some((s) => s.recommendation === 'ignore')).toBe(true);
    // The user's own subscription survives waitForBootstrap's internal one.
    for await (const e of stream) {
      seen.push(e);
      if (seen.some((x) => x.type === 'STREAM')) ac.abort();
    }
    expect(seen.find((e) => e.type === 'STREAM')).toMatchObject({
      target: expect.stringContaining('127.0.0.1'),
    });
    expect(seen.find((e) => e.type === 'STATUS_CLIENT')).toMatchObject({ action: 'BOOTSTRAP' });
  });

  it("waitForBootstrap with onWarning: 'continue' reports problems and times out typed", async () => {
    const c = await connect();
    await c.authenticate({ password: 'open sesame "quoted"' });
    const t0 = Date.now();
    await expect(c.waitForBootstrap({ timeoutMs: 1500, onWarning: 'continue' })).rejects.toThrow(
      code('ERR_TIMEOUT'),
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await c.bootstrapStatus()).progress).toBeLessThan(100);
  });
});

describe('TAKEOWNERSHIP and SIGNAL against a real tor', () => {
  it('tor exits when the owning control connection closes', async () => {
    const tor = await startTestTor({ mode: 'offline' });
    try {
      const c = await TorController.connect(tor.control);
      await c.authenticate();
      await c.takeOwnership();
      await c.close();
      const code = await Promise.race([
        tor.exited,
        new Promise((r) => setTimeout(() => r('still running'), 10_000)),
      ]);
      expect(code).not.toBe('still running');
    } finally {
      await tor.stop();
    }
  });

  it('SIGNAL SHUTDOWN: the controller sees its connection close; later calls fail typed', async () => {
    const tor = await startTestTor({ mode: 'offline' });
    try {
      const c = await TorController.connect(tor.control);
      await c.authenticate();
      await c.signal('SHUTDOWN');
      await c.closed;
      await expect(c.getInfo('version')).rejects.toThrow(code('ERR_TOR_CONTROL_CLOSED'));
    } finally {
      await tor.stop();
    }
  });
});
