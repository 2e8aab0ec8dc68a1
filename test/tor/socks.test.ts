// A scripted SOCKS5 server (RFC 1928/1929) on 127.0.0.1 for the replies a real tor does not give on demand
// here (2, 3, 5–8, 0xF0–0xF5, 0xF7, an unanswered handshake, refused auth methods, success with early data).
// socks.tor.test.ts covers what a real tor does produce.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/index.js';
import {
  dialOnion,
  isolationCredentials,
  RETRYABLE_SOCKS_REPLIES,
  SOCKS_REPLY_NAMES,
  SocksError,
  socksConnect,
} from '../../src/tor/socks.js';

interface Seen {
  user?: string;
  pass?: string;
  host?: string;
  port?: number;
}
type Decide = (seen: Seen, n: number) => { reply: number; after?: (sock: net.Socket) => void } | 'silent';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function fakeSocks(
  decide: Decide,
  opts: { methods?: 'refuse' } = {},
): Promise<{ port: number; seen: Seen[]; connections: () => number }> {
  const seen: Seen[] = [];
  let n = 0;
  const server = net.createServer((sock) => {
    const me: Seen = {};
    const index = n++;
    let buf = Buffer.alloc(0);
    let state: 'greet' | 'auth' | 'req' | 'done' = 'greet';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (state === 'greet' && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
          const methods = [...buf.subarray(2, 2 + (buf[1] as number))];
          buf = buf.subarray(2 + (buf[1] as number));
          if (opts.methods === 'refuse') {
            sock.end(Buffer.from([5, 0xff]));
            state = 'done';
          } else if (methods.includes(2)) {
            sock.write(Buffer.from([5, 2]));
            state = 'auth';
          } else {
            sock.write(Buffer.from([5, 0]));
            state = 'req';
          }
          continue;
        }
        if (state === 'auth' && buf.length >= 2) {
          const ulen = buf[1] as number;
          if (buf.length < 3 + ulen) return;
          const plen = buf[2 + ulen] as number;
          if (buf.length < 3 + ulen + plen) return;
          me.user = buf.subarray(2, 2 + ulen).toString();
          me.pass = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
          buf = buf.subarray(3 + ulen + plen);
          sock.write(Buffer.from([1, 0]));
          state = 'req';
          continue;
        }
        if (state === 'req' && buf.length >= 5) {
          const len = buf[4] as number;
          if (buf.length < 7 + len) return;
          me.host = buf.subarray(5, 5 + len).toString();
          me.port = buf.readUInt16BE(5 + len);
          buf = buf.subarray(7 + len);
          seen.push(me);
          state = 'done';
          const d = decide(me, index);
          if (d === 'silent') return;
          sock.write(Buffer.from([5, d.reply, 0, 1, 0, 0, 0, 0, 0, 0]));
          if (d.reply !== 0) sock.end();
          d.after?.(sock);
          continue;
        }
        return;
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, seen, connections: () => n };
}

const onion = AgentKey.random().onion;

describe('socksConnect against a scripted SOCKS5 server', () => {
  it.each(Object.keys(SOCKS_REPLY_NAMES).map(Number))('reply 0x%s is a typed SocksError', async (code) => {
    const { port } = await fakeSocks(() => ({ reply: code }));
    const err = await socksConnect({ socksPort: port, host: 'example.onion', port: 80 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SocksError);
    expect(err).toMatchObject({
      code: 'ERR_SOCKS',
      reply: code,
      retryable: RETRYABLE_SOCKS_REPLIES.includes(code),
      details: expect.objectContaining({ reply: code, replyName: SOCKS_REPLY_NAMES[code], stage: 'reply' }),
    });
  });

  it('returns a connected socket, including data the server sent right after its reply', async () => {
    const { port, seen } = await fakeSocks(() => ({
      reply: 0,
      after: (s) => {
        s.write('hello ');
        s.on('data', (d) => s.write(d));
      },
    }));
    const sock = await socksConnect({ socksPort: port, host: 'peer.example', port: 4001 });
    sock.write('world');
    let got = '';
    await new Promise<void>((resolve) =>
      sock.on('data', (d) => {
        got += d.toString();
        if (got === 'hello world') resolve();
      }),
    );
    sock.destroy();
    expect(seen[0]).toMatchObject({ host: 'peer.example', port: 4001 });
    expect(seen[0]?.user).toBeUndefined();
  });

  it('sends per-peer credentials so tor isolates streams (IsolateSOCKSAuth)', async () => {
    const { port, seen } = await fakeSocks(() => ({ reply: 0, after: (s) => s.end() }));
    for (const key of ['peer-a', 'peer-b', 'peer-a']) {
      (await socksConnect({ socksPort: port, host: 'x.onion', port: 1, isolationKey: key })).destroy();
    }
    expect(seen[0]?.user).toBe(isolationCredentials('peer-a').userId);
    expect(seen[0]?.user).toBe(seen[2]?.user);
    expect(seen[0]?.user).not.toBe(seen[1]?.user);
    expect(seen[0]?.pass).not.toBe(seen[1]?.pass);
    expect(seen[0]?.user?.startsWith('<torS')).toBe(false); // not a prop351 extended parameter
    expect(isolationCredentials('x'.repeat(10_000)).userId.length).toBeLessThan(256);
  });

  it('times out a proxy that never answers, and honours an AbortSignal', async () => {
    const { port } = await fakeSocks(() => 'silent');
    const t0 = Date.now();
    await expect(
      socksConnect({ socksPort: port, host: 'x.onion', port: 1 }, { timeoutMs: 300 }),
    ).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    const ac = new AbortController();
    const p = socksConnect({ socksPort: port, host: 'x.onion', port: 1 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('fails typed when nothing listens on the SOCKS port or the proxy refuses our auth methods', async () => {
    const closed = await fakeSocks(() => 'silent');
    const deadPort = closed.port;
    await new Promise((r) => servers.pop()?.close(r));
    await expect(socksConnect({ socksPort: deadPort, host: 'x.onion', port: 1 })).rejects.toMatchObject({
      code: 'ERR_SOCKS',
      details: expect.objectContaining({ stage: 'proxy-connect', errno: 'ECONNREFUSED' }),
    });
    const { port } = await fakeSocks(() => ({ reply: 0 }), { methods: 'refuse' });
    await expect(socksConnect({ socksPort: port, host: 'x.onion', port: 1 })).rejects.toMatchObject({
      code: 'ERR_SOCKS',
      details: expect.objectContaining({ stage: 'auth' }),
    });
  });

  it('rejects bad arguments before touching the network', async () => {
    await expect(socksConnect({ socksPort: 0, host: 'x', port: 1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    await expect(socksConnect({ socksPort: 9050, host: 'a b', port: 1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    await expect(socksConnect({ socksPort: 9050, host: 'x', port: 70000 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });
});

describe('dialOnion', () => {
  it('refuses an invalid onion without opening a connection', async () => {
    const { port, connections } = await fakeSocks(() => ({ reply: 0 }));
    const bad = `${onion.slice(0, 10)}${onion[10] === 'a' ? 'b' : 'a'}${onion.slice(11)}`; // checksum breaks
    await expect(dialOnion({ socksPort: port, onion: bad, port: 80 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
    await expect(dialOnion({ socksPort: port, onion: 'example.com', port: 80 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
    expect(connections()).toBe(0);
  });

  it('retries "descriptor not there yet" replies when asked, isolating per onion by default', async () => {
    const { port, seen } = await fakeSocks((_s, n) => (n < 2 ? { reply: n === 0 ? 4 : 0xf0 } : { reply: 0 }));
    const sock = await dialOnion({
      socksPort: port,
      onion: onion.toUpperCase(),
      port: 80,
      retry: { baseDelayMs: 20 },
    });
    sock.destroy();
    expect(seen).toHaveLength(3);
    expect(seen.every((s) => s.host === onion && s.port === 80)).toBe(true);
    expect(seen[0]?.user).toBe(isolationCredentials(onion.slice(0, -6)).userId);
  });

  it('does not retry without `retry`, nor on non-transient replies', async () => {
    const a = await fakeSocks(() => ({ reply: 4 }));
    await expect(dialOnion({ socksPort: a.port, onion, port: 80 })).rejects.toMatchObject({ reply: 4 });
    expect(a.seen).toHaveLength(1);
    const b = await fakeSocks(() => ({ reply: 0xf4 }));
    await expect(
      dialOnion({ socksPort: b.port, onion, port: 80, retry: { baseDelayMs: 10 } }),
    ).rejects.toMatchObject({
      reply: 0xf4,
    });
    expect(b.seen).toHaveLength(1);
  });

  it('bounds retries by attempts and by the overall timeout', async () => {
    const a = await fakeSocks(() => ({ reply: 0xf2 }));
    await expect(
      dialOnion({ socksPort: a.port, onion, port: 80, retry: { attempts: 3, baseDelayMs: 10 } }),
    ).rejects.toMatchObject({ reply: 0xf2 });
    expect(a.seen).toHaveLength(3);
    const b = await fakeSocks(() => ({ reply: 4 }));
    const t0 = Date.now();
    await expect(
      dialOnion(
        { socksPort: b.port, onion, port: 80, retry: { attempts: 100, baseDelayMs: 100 } },
        { timeoutMs: 500 },
      ),
    ).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(5_000); // 100 attempts × 100 ms without the timeout
  });
});
