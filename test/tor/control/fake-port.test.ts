// What a fake control port (anything that answers on the port we were told to attach to) can make our
// controller do: authentication downgrades, the files it makes us open, replies without end, and arbitrary
// reply text. Scripted servers on 127.0.0.1: a real tor does not misbehave on demand.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MmogitError } from '../../../src/errors.js';
import { MAX_REPLY_LINE, TorController } from '../../../src/tor/control/index.js';
import { propertyParams } from '../../helpers/property.js';

type Script = (line: string, sock: net.Socket) => void;

const servers: net.Server[] = [];
const controllers: TorController[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-fake-tor-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A scripted control port; `script` sees every command line. Returns the lines it received. */
async function fakeTor(script: Script): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\r\n'); i !== -1; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        received.push(line);
        script(line, sock);
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

const protocolInfo = (methods: string, cookieFile?: string) =>
  `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${methods}${cookieFile ? ` COOKIEFILE="${cookieFile}"` : ''}\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`;

/** A port that offers `methods` with `cookieFile` and accepts whatever AUTHENTICATE it gets. */
const lenientPort = (methods: string, cookieFile?: string) =>
  fakeTor((line, sock) => {
    if (line === 'PROTOCOLINFO 1') sock.write(protocolInfo(methods, cookieFile));
    else if (line.startsWith('AUTHENTICATE')) sock.write('250 OK\r\n');
    else if (line.startsWith('AUTHCHALLENGE')) {
      sock.write(`250 AUTHCHALLENGE SERVERHASH=${'AB'.repeat(32)} SERVERNONCE=${'CD'.repeat(32)}\r\n`);
    }
  });

describe('attach mode: authentication against a fake control port', () => {
  it('never sends a cookie file’s bytes: a port offering only COOKIE is refused', async () => {
    const secret = join(dir, 'some-app.cookie');
    const bytes = randomBytes(32);
    await writeFile(secret, bytes);
    const { port, received } = await lenientPort('COOKIE', secret);
    const c = await connect(port);
    await expect(c.authenticate()).rejects.toMatchObject({ code: 'ERR_TOR_AUTH_UNSUPPORTED' });
    expect(received).toEqual(['PROTOCOLINFO 1']);
    expect(received.join('\n').toLowerCase()).not.toContain(bytes.toString('hex'));
  });

  it('does not open a 32-byte file the port names unless it is an absolute path to a …cookie file', async () => {
    const victim = join(dir, 'wallet.key'); // 32 bytes: the size a cookie has
    await writeFile(victim, randomBytes(32));
    for (const named of [victim, 'control_auth_cookie', '/dev/zero', `${dir}/../etc/passwd`]) {
      const { port, received } = await lenientPort('COOKIE,SAFECOOKIE', named);
      const c = await connect(port);
      await expect(c.authenticate(), named).rejects.toMatchObject({
        code: 'ERR_TOR_AUTH_FAILED',
        details: { reason: 'cookie-file' },
      });
      expect(received, named).toEqual(['PROTOCOLINFO 1']);
    }
  });

  it('refuses a FIFO, a device or a file of the wrong size at once, even when the caller names it', async () => {
    const fifo = join(dir, 'fifo.cookie');
    execFileSync('mkfifo', [fifo]);
    const big = join(dir, 'big.cookie');
    await writeFile(big, Buffer.alloc(1024 * 1024));
    for (const [cookieFile, trusted] of [
      [fifo, false],
      [fifo, true],
      ['/dev/zero', true],
      [big, true],
    ] as const) {
      const { port } = await lenientPort('COOKIE,SAFECOOKIE', cookieFile);
      const c = await connect(port);
      await expect(
        c.authenticate({ timeoutMs: 5_000, ...(trusted ? { cookieFile } : {}) }),
        cookieFile,
      ).rejects.toMatchObject({ code: 'ERR_TOR_AUTH_FAILED', details: { reason: 'cookie-file' } });
    }
  }, 30_000);

  it('SAFECOOKIE with a real cookie file still works when the port proves it knows the cookie', async () => {
    const { createHmac } = await import('node:crypto');
    const cookieFile = join(dir, 'control_auth_cookie');
    const cookie = randomBytes(32);
    await writeFile(cookieFile, cookie);
    const serverNonce = randomBytes(32);
    const { port, received } = await fakeTor((line, sock) => {
      if (line === 'PROTOCOLINFO 1') sock.write(protocolInfo('COOKIE,SAFECOOKIE', cookieFile));
      else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
        const clientNonce = Buffer.from(line.split(' ')[2] as string, 'hex');
        const hash = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash')
          .update(Buffer.concat([cookie, clientNonce, serverNonce]))
          .digest('hex');
        sock.write(`250 AUTHCHALLENGE SERVERHASH=${hash} SERVERNONCE=${serverNonce.toString('hex')}\r\n`);
      } else if (line.startsWith('AUTHENTICATE ')) sock.write('250 OK\r\n');
    });
    await (await connect(port)).authenticate();
    expect(received.map((l) => l.split(' ')[0])).toEqual(['PROTOCOLINFO', 'AUTHCHALLENGE', 'AUTHENTICATE']);
    expect(received.join('\n').toLowerCase()).not.toContain(cookie.toString('hex'));
  });
});

describe('reply parsing against a fake control port', () => {
  it('a line without end is refused once over the limit, not buffered for ever', async () => {
    const { port } = await fakeTor((_line, sock) => {
      const chunk = `250-${'x'.repeat(64 * 1024)}`;
      for (let sent = 0; sent <= MAX_REPLY_LINE; sent += chunk.length) sock.write(chunk);
    });
    const c = await connect(port);
    await expect(c.getInfo('version', { timeoutMs: 20_000 })).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_PROTOCOL',
    });
    await c.closed;
  }, 30_000);

  it('a reply that never ends (endless mid-reply lines) is refused past 16 MiB', async () => {
    const { port } = await fakeTor((_line, sock) => {
      const lines = `250-${'y'.repeat(1000)}\r\n`.repeat(1000);
      const pump = () => {
        if (sock.destroyed) return;
        if (sock.write(lines)) setImmediate(pump);
        else sock.once('drain', pump);
      };
      pump();
    });
    const c = await connect(port);
    await expect(c.getInfo('version', { timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'ERR_TOR_CONTROL_PROTOCOL',
    });
  }, 40_000);

  it('property: any reply text to PROTOCOLINFO, AUTHCHALLENGE or GETINFO gives a result or a typed error', async () => {
    const real = [
      '250-PROTOCOLINFO 1',
      '250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/x/control_auth_cookie"',
      '250-VERSION Tor="0.4.9.11"',
      `250 AUTHCHALLENGE SERVERHASH=${'AB'.repeat(32)} SERVERNONCE=${'CD'.repeat(32)}`,
      '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"',
      '250+config-text=',
      '.',
      '250 OK',
      '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=x SUMMARY="y"',
      '552 Unrecognized key "x"',
    ];
    const line = fc.oneof(
      fc.constantFrom(...real),
      fc.string({ maxLength: 80 }),
      fc.jsonValue().map((v) => `250-${JSON.stringify(v)}`),
      fc
        .tuple(fc.constantFrom(...real), fc.nat(80), fc.string({ maxLength: 8 }))
        .map(([l, at, s]) => l.slice(0, at) + s + l.slice(at)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 12 }), async (lines) => {
        const reply = `${lines.join('\r\n')}\r\n`;
        const { port } = await fakeTor((_l, sock) => sock.write(reply));
        const c = await connect(port);
        for (const call of [
          () => c.authenticate({ timeoutMs: 250 }),
          () => c.bootstrapStatus({ timeoutMs: 250 }),
          () => c.socksListeners({ timeoutMs: 250 }),
        ]) {
          try {
            await call();
          } catch (e) {
            expect(e, String(e)).toBeInstanceOf(MmogitError);
          }
        }
        await c.close();
        controllers.splice(controllers.indexOf(c), 1);
        await new Promise((r) => servers.pop()?.close(r));
      }),
      propertyParams('fake control port replies', { numRuns: 60 }),
    );
  }, 120_000);
});

describe('abort listeners', () => {
  it('a caller’s signal carries no listener after 300 commands (none added for good)', async () => {
    const { port } = await fakeTor((_line, sock) => sock.write('250-version=0.4.9.11\r\n250 OK\r\n'));
    const c = await connect(port);
    const caller = new AbortController();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await Promise.all(
        Array.from({ length: 300 }, () => c.getInfo('version', { signal: caller.signal, timeoutMs: 10_000 })),
      );
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
