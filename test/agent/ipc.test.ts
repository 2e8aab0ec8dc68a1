import { spawn } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { lstatSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkIpcRequest,
  IPC_MAX_CONNECTIONS,
  IPC_MAX_LINE_BYTES,
  type IpcHandler,
  type IpcServer,
  ipcCall,
  parseIpcRequest,
  startIpcServer,
} from '../../src/agent/ipc.js';
import { optionalIntParam, stringArrayParam, stringParam } from '../../src/agent/ipc-params.js';
import { MmogitError } from '../../src/errors.js';
import { propertyParams } from '../helpers/property.js';

let dir: string;
let server: IpcServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-ipc-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

/**
 * Writes `bytes` to the socket raw (then half-closes, with `halfClose`) and collects every line the server
 * answers until it closes.
 */
function rawExchange(
  path: string,
  bytes: string | Buffer,
  timeoutMs = 15_000,
  halfClose = false,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(got)}`));
    }, timeoutMs);
    socket.on('connect', () => (halfClose ? socket.end(bytes) : socket.write(bytes)));
    socket.on('data', (d) => {
      got += d;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got.split('\n').filter((l) => l !== ''));
    });
  });
}

const echo: IpcHandler = async (params) => ({ params });
const handlers: Record<string, IpcHandler> = {
  ping: async () => ({ pong: true }),
  echo,
  throwsSync: (() => {
    throw new TypeError('boom');
  }) as unknown as IpcHandler,
  unserialisable: async () => ({ big: 1n }),
  typed: async (p) => ({ n: optionalIntParam(p, 'n', { min: 0, max: 10 }), s: stringParam(p, 's') }),
};

function isTypedErrorLine(line: string | undefined): boolean {
  const msg = JSON.parse(line ?? 'null') as { error?: { code?: unknown } } | null;
  return typeof msg?.error?.code === 'string' && /^ERR_[A-Z_]+$/.test(msg.error.code);
}

describe('IPC request decoding', () => {
  it('property: any JSON value is a request or a typed error, never another throw', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const line = new TextEncoder().encode(JSON.stringify(value) ?? 'null');
        try {
          const r = parseIpcRequest(line);
          expect(typeof r.method).toBe('string');
          expect(typeof r.params).toBe('object');
        } catch (e) {
          expect(e).toBeInstanceOf(MmogitError);
        }
      }),
      propertyParams('ipc jsonValue', { numRuns: 500 }),
    );
  });

  it('property: near-miss requests (wrong field types) are typed errors', () => {
    const anyJson = fc.jsonValue();
    fc.assert(
      fc.property(
        fc.record({ method: anyJson, params: anyJson }, { requiredKeys: [] }),
        fc.uint8Array({ maxLength: 16 }),
        (request, junk) => {
          for (const line of [
            new TextEncoder().encode(JSON.stringify(request)),
            Buffer.concat([Buffer.from(JSON.stringify(request)), junk]),
          ]) {
            try {
              parseIpcRequest(line);
            } catch (e) {
              expect(e).toBeInstanceOf(MmogitError);
            }
          }
        },
      ),
      propertyParams('ipc near-miss', { numRuns: 500 }),
    );
  });

  it('refuses null, arrays, numbers and a missing method with ERR_DAEMON_IPC', () => {
    for (const v of [
      null,
      [],
      [1],
      5,
      'x',
      true,
      {},
      { method: 5 },
      { method: '' },
      { method: 'a'.repeat(65) },
    ]) {
      expect(() => checkIpcRequest(v), JSON.stringify(v)).toThrow(
        expect.objectContaining({ code: 'ERR_DAEMON_IPC' }),
      );
    }
    expect(() => checkIpcRequest({ method: 'send', params: [1] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(checkIpcRequest({ method: 'ping', params: null })).toEqual({ method: 'ping', params: {} });
    expect(() => parseIpcRequest(Uint8Array.of(0x7b, 0xff, 0x7d))).toThrow(
      expect.objectContaining({ code: 'ERR_DAEMON_IPC' }),
    );
  });

  it('param readers check type and range', () => {
    const bad = (fn: () => unknown) =>
      expect(fn).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    bad(() => stringParam({ onion: 5 }, 'onion'));
    bad(() => stringParam({}, 'onion'));
    bad(() => stringParam({ onion: 'x'.repeat(200) }, 'onion', 128));
    bad(() => optionalIntParam({ limit: -1 }, 'limit', { min: 0, max: 10 }));
    bad(() => optionalIntParam({ limit: 1.5 }, 'limit', { min: 0, max: 10 }));
    bad(() => optionalIntParam({ limit: '3' }, 'limit', { min: 0, max: 10 }));
    bad(() => optionalIntParam({ limit: 1e300 }, 'limit', { min: 0, max: 10 }));
    bad(() => stringArrayParam({ peers: 'a' }, 'peers'));
    bad(() => stringArrayParam({ peers: [{}] }, 'peers'));
    bad(() => stringArrayParam({ peers: new Array(257).fill('a') }, 'peers'));
    expect(optionalIntParam({ limit: null }, 'limit', { min: 0, max: 10 })).toBeUndefined();
    expect(stringArrayParam({}, 'peers')).toEqual([]);
  });
});

describe('IPC server under hostile lines', () => {
  it('answers every malformed line with one typed error and keeps serving', async () => {
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    const lines = [
      'null\n',
      '[]\n',
      '[1,2]\n',
      '42\n',
      '"ping"\n',
      'true\n',
      '{}\n',
      '{"method":null}\n',
      '{"method":["ping"]}\n',
      '{"method":"nope"}\n',
      '{"method":"__proto__"}\n',
      '{"method":"constructor"}\n',
      '{"method":"hasOwnProperty"}\n',
      '{"method":"echo","params":[1]}\n',
      '{"method":"echo","params":"x"}\n',
      '{"method":"typed","params":{"n":-1,"s":"a"}}\n',
      '{"method":"typed","params":{"n":1,"s":7}}\n',
      '{"method":"throwsSync"}\n',
      '{"method":"unserialisable"}\n',
      '{not json\n',
      Buffer.from([0xff, 0xfe, 0x0a]),
    ];
    for (const line of lines) {
      const reply = await rawExchange(path, line);
      expect(reply, String(line)).toHaveLength(1);
      expect(isTypedErrorLine(reply[0]), `${String(line)} → ${reply[0]}`).toBe(true);
      expect(await ipcCall(path, 'ping')).toEqual({ pong: true });
    }
  });

  it('refuses a line over the limit before buffering it, and one request per connection', async () => {
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    const huge = await rawExchange(path, Buffer.alloc(IPC_MAX_LINE_BYTES + 10, 0x61));
    expect(JSON.parse(huge[0] ?? '{}').error.code).toBe('ERR_TOO_LARGE');
    const two = await rawExchange(path, '{"method":"ping"}\n{"method":"echo"}\n');
    expect(two.map((l) => JSON.parse(l))).toEqual([{ result: { pong: true } }]);
    expect(await ipcCall(path, 'echo', { a: 1 })).toEqual({ params: { a: 1 } });
  });

  it('a client that half-closes after its request still gets a slow handler’s reply', async () => {
    // Regression: the server used to end its side on the client's FIN (net's allowHalfOpen default), so a
    // handler that answered after it found the socket ended and its reply was dropped.
    const path = join(dir, 'daemon.sock');
    let abortedBeforeReply: boolean | undefined;
    server = await startIpcServer(path, {
      slow: async (_params, context) => {
        await new Promise((r) => setTimeout(r, 200));
        abortedBeforeReply = context.signal.aborted;
        return { done: true };
      },
    });
    const reply = await rawExchange(path, '{"method":"slow"}\n', 15_000, true);
    expect(reply.map((l) => JSON.parse(l))).toEqual([{ result: { done: true } }]);
    expect(abortedBeforeReply).toBe(false);
    // A half-close with no request line still ends the connection at once, with no reply.
    expect(await rawExchange(path, '{"method":"pi', 5_000, true)).toEqual([]);
  });

  it('closes a connection that sends no request in time, and serves others meanwhile', async () => {
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    const idle = rawExchange(path, '{"method":"pi', 20_000);
    expect(await ipcCall(path, 'ping')).toEqual({ pong: true });
    const reply = await idle;
    expect(JSON.parse(reply[0] ?? '{}').error.code).toBe('ERR_TIMEOUT');
  }, 30_000);

  it(`caps concurrent connections at ${IPC_MAX_CONNECTIONS} and serves again once they go`, async () => {
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    const sockets = await Promise.all(
      Array.from(
        { length: IPC_MAX_CONNECTIONS + 20 },
        () =>
          new Promise<import('node:net').Socket>((resolve) => {
            const s = connect(path);
            s.on('error', () => {});
            s.on('connect', () => resolve(s));
          }),
      ),
    );
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await ipcCall(path, 'ping')).toEqual({ pong: true });
  });
});

describe('IPC client and abort listeners', () => {
  it('a socket answering with lines that are no reply objects gives ERR_DAEMON_IPC, never a throw', async () => {
    const { createServer } = await import('node:net');
    for (const answer of [
      'null\n',
      '[]\n',
      '7\n',
      '{"error":null}\n{"result":1}\n',
      '{"progress":null}\n',
      '\u00ff\n',
    ]) {
      const path = join(dir, `fake-${Math.random().toString(36).slice(2)}.sock`);
      const fake = createServer((s) => {
        s.on('error', () => {});
        s.resume();
        s.end(answer);
      });
      await new Promise<void>((r) => fake.listen(path, r));
      try {
        const got = await ipcCall(path, 'ping', {}, { timeoutMs: 5_000 }).then(
          (v) => ({ ok: v }),
          (e: unknown) => ({ err: e }),
        );
        if ('err' in got) {
          expect(got.err, answer).toBeInstanceOf(MmogitError);
          expect((got.err as MmogitError).code, answer).toBe('ERR_DAEMON_IPC');
        } else expect(got.ok, answer).toBe(1); // `{"error":null}` is skipped, the result line counts
      } finally {
        await new Promise((r) => fake.close(r));
      }
    }
  });

  it('a caller’s signal carries no listener after 200 calls', async () => {
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    const caller = new AbortController();
    for (let i = 0; i < 4; i++) {
      await Promise.all(
        Array.from({ length: 50 }, () => ipcCall(path, 'ping', {}, { signal: caller.signal })),
      );
    }
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('IPC socket permissions', () => {
  it('the socket never appears under its name with a mode other than 0600, even with umask 0', async () => {
    const path = join(dir, 'daemon.sock');
    const seen = new Set<number>();
    const old = process.umask(0);
    try {
      for (let round = 0; round < 5; round++) {
        // Keep libuv's file-system threads busy, so any step between bind and chmod lasts long enough to see.
        const busy = Array.from(
          { length: 4 },
          () => new Promise((r) => pbkdf2(`${round}`, 'salt', 30_000, 32, 'sha256', r)),
        );
        let done = false;
        const starting = startIpcServer(path, handlers).finally(() => {
          done = true;
        });
        while (!done) {
          try {
            seen.add(lstatSync(path).mode & 0o777);
          } catch {
            // not there yet
          }
          await new Promise((r) => setImmediate(r));
        }
        seen.add(lstatSync(path).mode & 0o777);
        await Promise.all(busy);
        await (await starting).close();
      }
    } finally {
      process.umask(old);
    }
    expect([...seen].map((m) => m.toString(8))).toEqual(['600']);
    expect((await readdir(dir)).filter((f) => f.startsWith('.ipc-'))).toEqual([]);
  });

  it.runIf(process.getuid?.() === 0)('another user cannot connect to daemon.sock', async () => {
    await chmod(dir, 0o755); // only the socket's own mode protects it here
    const path = join(dir, 'daemon.sock');
    server = await startIpcServer(path, handlers);
    // socat, not node: the node running the tests may sit where that user cannot reach it (a 0700 checkout)
    const attempt = (uid: number) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn('socat', ['-T', '2', '/dev/null', `UNIX-CONNECT:${path}`], {
          uid,
          gid: uid,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d) => {
          err += d;
        });
        child.on('error', reject);
        child.on('close', (code) =>
          resolve(code === 0 ? 'CONNECTED' : /Permission denied/.test(err) ? 'EACCES' : err.trim()),
        );
      });
    expect(await attempt(65534)).toBe('EACCES');
    expect(await attempt(0)).toBe('CONNECTED');
  });
});
