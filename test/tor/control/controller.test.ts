// Faults a real tor does not produce on demand: a control port that dies mid-reply, never answers, sends
// unsolicited replies, forges a SAFECOOKIE server hash, or offers only NULL auth; and tor's
// RECOMMENDATION=warn bootstrap problem, which takes minutes of refused connections to reach (the event
// replayed here is the one tor 0.4.9.11 sent in test/fixtures/tor-control/session-password-events.txt).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BootstrapStatus, TorController } from '../../../src/tor/control/index.js';

type Script = (line: string, sock: net.Socket) => void;

const servers: net.Server[] = [];
const controllers: TorController[] = [];

/** A scripted control port on 127.0.0.1; `script` sees every command line. Returns the lines received. */
async function fakeTor(script: Script): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i = buf.indexOf('\r\n');
      while (i !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        received.push(line);
        script(line, sock);
        i = buf.indexOf('\r\n');
      }
    });
    sock.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, received };
}

async function connect(port: number): Promise<TorController> {
  const c = await TorController.connect({ host: '127.0.0.1', port });
  controllers.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const warnEvent = readFileSync(
  join(import.meta.dirname, '../../fixtures/tor-control/session-password-events.txt'),
  'utf8',
)
  .split('\n')
  .find((l) => l.includes('RECOMMENDATION=warn')) as string;

describe('TorController faults', () => {
  it('fails every pending call with ERR_TOR_CONTROL_CLOSED when the connection drops mid-reply', async () => {
    const { port } = await fakeTor((line, sock) => {
      if (line.startsWith('GETINFO')) sock.write('250-version=0.4.9.11\r\n'); // half a reply
      if (line.startsWith('SIGNAL')) sock.destroy();
    });
    const c = await connect(port);
    const a = c.getInfo('version');
    const b = c.signal('NEWNYM');
    await expect(a).rejects.toMatchObject({ code: 'ERR_TOR_CONTROL_CLOSED' });
    await expect(b).rejects.toMatchObject({ code: 'ERR_TOR_CONTROL_CLOSED' });
    await c.closed;
    expect(c.isOpen).toBe(false);
  });

  it('times out a call tor never answers, then keeps replies matched to their commands', async () => {
    // Like tor, answers strictly in order: the reply to "b" waits behind the slow reply to "a".
    let queue = Promise.resolve();
    let first = true;
    const { port } = await fakeTor((line, sock) => {
      if (!line.startsWith('GETINFO')) return;
      const key = line.split(' ')[1];
      const delay = first ? 400 : 0;
      first = false;
      queue = queue.then(
        () =>
          new Promise<void>((r) =>
            setTimeout(() => {
              sock.write(`250-${key}=${key === 'a' ? 'late' : 'prompt'}\r\n250 OK\r\n`);
              r();
            }, delay),
          ),
      );
    });
    const c = await connect(port);
    const t0 = Date.now();
    await expect(c.getInfo('a', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(3_000); // ERR_TIMEOUT, not the 400 ms reply, ended it; this bounds a hang
    // The late reply to "a" arrives first and must be dropped, not handed to "b".
    await expect(c.getInfo('b')).resolves.toBe('prompt');
  });

  it('honours an AbortSignal on a pending call', async () => {
    const { port } = await fakeTor(() => {});
    const c = await connect(port);
    const ac = new AbortController();
    const p = c.getInfo('version', { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('closes with a protocol error on an unsolicited reply or a garbage line', async () => {
    const { port } = await fakeTor(() => {});
    const c = await connect(port);
    const { port: port2 } = await fakeTor((_l, sock) => sock.write('HTTP/1.0 400 Bad Request\r\n'));
    const d = await connect(port2);
    const pending = d.getInfo('version');
    await expect(pending).rejects.toMatchObject({ code: 'ERR_TOR_CONTROL_PROTOCOL' });
    // Unsolicited: the server speaks first.
    const { port: port3 } = await fakeTor(() => {});
    const server = servers.at(-1)!;
    server.on('connection', (s) => s.write('250 OK\r\n'));
    const e = await connect(port3);
    await e.closed;
    await expect(e.getInfo('version')).rejects.toMatchObject({ code: 'ERR_TOR_CONTROL_PROTOCOL' });
    expect(c.isOpen).toBe(true);
  });

  it('never sends the SAFECOOKIE proof to a port that cannot prove it knows the cookie', async () => {
    const cookieFile = join(tmpdir(), `mmogit-${process.pid}-control_auth_cookie`);
    await writeFile(cookieFile, Buffer.alloc(32, 7));
    const { port, received } = await fakeTor((line, sock) => {
      if (line === 'PROTOCOLINFO 1') {
        sock.write(
          `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="${cookieFile}"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`,
        );
      } else if (line.startsWith('AUTHCHALLENGE')) {
        sock.write(`250 AUTHCHALLENGE SERVERHASH=${'AB'.repeat(32)} SERVERNONCE=${'CD'.repeat(32)}\r\n`);
      }
    });
    const c = await connect(port);
    await expect(c.authenticate()).rejects.toMatchObject({
      code: 'ERR_TOR_AUTH_FAILED',
      details: { reason: 'server-hash-mismatch' },
    });
    await c.closed;
    expect(received.some((l) => l.startsWith('AUTHENTICATE'))).toBe(false);
  });

  it('uses NULL auth only when it is all tor offers and the caller allows it', async () => {
    const { port, received } = await fakeTor((line, sock) => {
      if (line === 'PROTOCOLINFO 1') {
        sock.write('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n');
      } else if (line === 'AUTHENTICATE') sock.write('250 OK\r\n');
    });
    const c = await connect(port);
    await expect(c.authenticate()).rejects.toMatchObject({ code: 'ERR_TOR_AUTH_UNSUPPORTED' });
    await c.authenticate({ allowNull: true });
    expect(received).toEqual(['PROTOCOLINFO 1', 'AUTHENTICATE']);
  });

  describe('waitForBootstrap', () => {
    const bootstrapServer = (events: string[]) =>
      fakeTor((line, sock) => {
        if (line.startsWith('SETEVENTS')) sock.write('250 OK\r\n');
        if (line === 'GETINFO status/bootstrap-phase') {
          sock.write(
            '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"\r\n250 OK\r\n',
          );
          events.forEach((e, i) => {
            setTimeout(() => sock.write(`${e}\r\n`), 20 * (i + 1));
          });
        }
      });

    it("fails with ERR_TOR_BOOTSTRAP on tor's RECOMMENDATION=warn problem", async () => {
      const { port, received } = await bootstrapServer([warnEvent]);
      const c = await connect(port);
      await c.setEvents(['HS_DESC']);
      const steps: BootstrapStatus[] = [];
      await expect(c.waitForBootstrap({ onProgress: (s) => steps.push(s) })).rejects.toMatchObject({
        code: 'ERR_TOR_BOOTSTRAP',
        details: expect.objectContaining({
          progress: 5,
          warning: 'Connection refused',
          recommendation: 'warn',
        }),
      });
      expect(steps.at(-1)?.recommendation).toBe('warn');
      // Subscribed STATUS_CLIENT on top of the user's events, then restored the user's set.
      expect(received.filter((l) => l.startsWith('SETEVENTS'))).toEqual([
        'SETEVENTS HS_DESC',
        'SETEVENTS HS_DESC STATUS_CLIENT',
        'SETEVENTS HS_DESC',
      ]);
    });

    it('resolves at 100 %, reporting each step once', async () => {
      const { port } = await bootstrapServer([
        '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"',
        '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"',
        '650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED',
        '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"',
      ]);
      const c = await connect(port);
      const steps: number[] = [];
      await c.waitForBootstrap({ onProgress: (s) => steps.push(s.progress) });
      expect(steps).toEqual([5, 50, 100]);
    });

    it("keeps waiting on a warn problem with onWarning: 'continue'", async () => {
      const { port } = await bootstrapServer([
        warnEvent,
        '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"',
      ]);
      const c = await connect(port);
      await expect(c.waitForBootstrap({ onWarning: 'continue', timeoutMs: 5000 })).resolves.toBeUndefined();
    });
  });
});
