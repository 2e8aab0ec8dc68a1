// Direct messaging streams (src/agent/messaging-direct.ts) on loopback: the tor stream is a plain TCP connection to
// the peer's direct listener here (what tor's onion port forwards to); the libp2p route is the loopback test node.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Messenger, type ReceivedMessage } from '../../src/agent/messaging.js';
import { MESSAGE_PROTOCOLS } from '../../src/agent/messaging-connections.js';
import { type DirectMessaging, startDirectMessaging } from '../../src/agent/messaging-direct.js';
import {
  DIRECT_ACCEPTED,
  DIRECT_MESSAGING_PORT,
  DIRECT_UNSUPPORTED,
  encodePreface,
  readPreface,
} from '../../src/agent/messaging-direct-wire.js';
import { JsonlMessageStore } from '../../src/agent/messaging-store.js';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { SocksError } from '../../src/tor/socks.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { type Directory, type LoopbackNode, loopbackNode, waitFor } from './messaging-helpers.js';

let tmp: string;
const stops: (() => Promise<void>)[] = [];
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-direct-'));
});
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  stops.length = 0;
  await rm(tmp, { recursive: true, force: true });
});

/** onion → the TCP port its direct listener is on (what its onion's port 4002 forwards to). */
type DirectPorts = Map<string, number>;

function connectTo(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** `onion`'s openStream: its tor here is a plain connect to the peer's listener; an unknown peer refuses. */
function loopbackOpen(ports: DirectPorts, log: string[]) {
  return async (onion: string, port: number) => {
    log.push(`${onion}:${port}`);
    const p = ports.get(onion);
    if (p === undefined) throw new SocksError('connection refused', { reply: 5, stage: 'reply' });
    return connectTo(p);
  };
}

interface Peer {
  key: AgentKey;
  base: LoopbackNode;
  direct: DirectMessaging;
  messenger: Messenger;
  got: ReceivedMessage[];
  opened: string[];
}

async function peer(dir: Directory, ports: DirectPorts, name: string, withDirect = true): Promise<Peer> {
  const key = AgentKey.random();
  const base = await loopbackNode(key.onion, dir);
  const opened: string[] = [];
  const direct = await startDirectMessaging({
    base,
    openStream: loopbackOpen(ports, opened),
    protocols: Object.values(MESSAGE_PROTOCOLS),
    listen: { host: '127.0.0.1' },
  });
  if (withDirect) ports.set(key.onion, Number(direct.port.target.split(':')[1]));
  const messenger = new Messenger({
    node: direct.node,
    key,
    store: new JsonlMessageStore(join(tmp, name, 'messages.jsonl')),
    outboxDir: join(tmp, name, 'outbox'),
    retry: { initialDelayMs: 50, maxDelayMs: 400, attemptTimeoutMs: 3_000 },
  });
  const got: ReceivedMessage[] = [];
  messenger.on('message', (m) => got.push(m));
  await messenger.start();
  stops.push(async () => {
    await messenger.stop();
    await direct.close();
    await base.stop();
  });
  return { key, base, direct, messenger, got, opened };
}

describe('direct messaging streams', () => {
  it('messages, acks and pings go over the direct stream; the libp2p route is not dialled', async () => {
    const dir: Directory = new Map();
    const ports: DirectPorts = new Map();
    const a = await peer(dir, ports, 'a');
    const b = await peer(dir, ports, 'b');
    let libp2pDials = 0;
    const dial = a.base.dial.bind(a.base);
    a.base.dial = async (...args) => {
      libp2pDials++;
      return dial(...args);
    };
    const r = await a.messenger.send(b.key.onion, 'over the direct stream');
    expect(r.status).toBe('delivered');
    const back = await b.messenger.send(a.key.onion, 'and back');
    expect(back.status).toBe('delivered');
    const ping = await a.messenger.ping(b.key.onion);
    expect(ping.peer.onion).toBe(b.key.onion);
    expect(ping.transport).toBe('tor'); // a direct stream is a tor stream (the loopback route would say 'direct')
    expect(ping.reused).toBe(true);
    await waitFor(() => b.got.length === 1 && a.got.length === 1);
    expect(b.got[0]?.text).toBe('over the direct stream');
    expect(a.got[0]?.text).toBe('and back');
    expect(libp2pDials).toBe(0);
    expect(a.opened).toEqual([`${b.key.onion}:${DIRECT_MESSAGING_PORT}`]);
    // one stream carries both directions: b answered and sent on the link a opened
    expect(a.direct.stats()).toEqual({ dialled: 1, accepted: 0, fellBack: 0 });
    expect(b.direct.stats()).toEqual({ dialled: 0, accepted: 1, fellBack: 0 });
  });

  it('a peer without the port (connect refused) is reached over libp2p, and not tried direct again at once', async () => {
    const dir: Directory = new Map();
    const ports: DirectPorts = new Map();
    const a = await peer(dir, ports, 'a');
    const old = await peer(dir, ports, 'old', false);
    expect((await a.messenger.send(old.key.onion, 'one')).status).toBe('delivered');
    await a.messenger.ping(old.key.onion, { fresh: true });
    await waitFor(() => old.got.length === 1);
    // one refused connect, then libp2p only (the second link was a fresh dial, not a direct attempt)
    expect(a.opened).toEqual([`${old.key.onion}:${DIRECT_MESSAGING_PORT}`]);
    expect(a.direct.stats()).toMatchObject({ dialled: 0, fellBack: 1 });
    expect(old.direct.stats().accepted).toBe(0);
  });

  it('a peer whose policy is not tor-only is dialled through libp2p every time, without a mark', async () => {
    const dir: Directory = new Map();
    const ports: DirectPorts = new Map();
    const b = await peer(dir, ports, 'b');
    const base = await loopbackNode(AgentKey.random().onion, dir);
    stops.push(() => base.stop());
    let asked = 0;
    const direct = await startDirectMessaging({
      base,
      openStream: async () => {
        asked++;
        throw new MmogitError('ERR_TRANSPORT_POLICY', 'policy routes through libp2p');
      },
      protocols: Object.values(MESSAGE_PROTOCOLS),
      listen: { host: '127.0.0.1' },
    });
    stops.push(() => direct.close());
    for (let i = 0; i < 2; i++) {
      const { channel, transport } = await direct.node.dial(b.key.onion, MESSAGE_PROTOCOLS[2]);
      expect(transport).toBe('direct'); // the loopback test node's route
      channel.abort(new Error('done'));
    }
    expect(asked).toBe(2);
  });

  it('a protocol the peer does not serve directly is ERR_PEER_UNSUPPORTED; other protocols skip the direct route', async () => {
    const dir: Directory = new Map();
    const ports: DirectPorts = new Map();
    const b = await peer(dir, ports, 'b');
    const base = await loopbackNode(AgentKey.random().onion, dir);
    stops.push(() => base.stop());
    const opened: string[] = [];
    const direct = await startDirectMessaging({
      base,
      openStream: loopbackOpen(ports, opened),
      protocols: ['/mmogit/msg/9.0.0', '/mmogit/other/1.0.0'],
      listen: { host: '127.0.0.1' },
    });
    stops.push(() => direct.close());
    const err = await direct.node.dial(b.key.onion, '/mmogit/msg/9.0.0').catch((e) => e);
    expect(err).toBeInstanceOf(MmogitError);
    expect(err.code).toBe('ERR_PEER_UNSUPPORTED');
    // a protocol not in the direct list goes to the base node, which refuses it in its own way
    const err2 = await direct.node.dial(b.key.onion, '/mmogit/file/1.0.0').catch((e) => e);
    expect(err2.code).toBe('ERR_PEER_UNSUPPORTED');
    expect(opened).toEqual([`${b.key.onion}:${DIRECT_MESSAGING_PORT}`]);
  });

  it('hostile inbound streams: garbage is cut at the preface, a silent one at its deadline, the oldest pending evicted', async () => {
    const handled: string[] = [];
    const base = await loopbackNode(AgentKey.random().onion, new Map());
    stops.push(() => base.stop());
    const carrier = async (o: { maxStreams?: number; prefaceTimeoutMs: number }) => {
      const direct = await startDirectMessaging({
        base,
        openStream: async () => {
          throw new Error('unused');
        },
        protocols: ['/mmogit/msg/2.0.0'],
        listen: { host: '127.0.0.1' },
        ...o,
      });
      stops.push(() => direct.close());
      await direct.node.handle('/mmogit/msg/2.0.0', () => handled.push('msg'));
      return Number(direct.port.target.split(':')[1]);
    };
    // A deadline far above anything the steps below take, so a close before it is the listener's decision.
    const LONG = 20_000;
    const port = await carrier({ maxStreams: 2, prefaceTimeoutMs: LONG });
    const closedAfter = (s: net.Socket) => {
      const t0 = performance.now();
      return new Promise<number>((r) => s.once('close', () => r(performance.now() - t0)));
    };
    const open = async (p: number) => {
      const s = await connectTo(p);
      s.on('error', () => {});
      return s;
    };

    // other magic: closed without an answer, long before the deadline; the handler never runs
    const g = await open(port);
    const gotBytes: Buffer[] = [];
    g.on('data', (d) => gotBytes.push(d));
    g.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(await closedAfter(g)).toBeLessThan(LONG / 2);
    expect(Buffer.concat(gotBytes).length).toBe(0);

    // two pending fill the cap; a third evicts the oldest of them (long before its deadline), not the second
    const p1 = await open(port);
    const p1Closed = closedAfter(p1);
    const p2 = await open(port);
    let p2ClosedEarly = false;
    p2.once('close', () => {
      p2ClosedEarly = true;
    });
    // the listener accepts in arrival order, so p1 and p2 are counted when p3 comes
    const p3 = await open(port);
    expect(await p1Closed).toBeLessThan(LONG / 2);
    expect(p2ClosedEarly).toBe(false);

    // a good preface for a protocol not served: "unsupported", then closed
    const u = await open(port);
    const uBytes: Buffer[] = [];
    u.on('data', (d) => uBytes.push(d));
    u.write(encodePreface('/mmogit/msg/1.0.0'));
    await closedAfter(u);
    expect([...Buffer.concat(uBytes)]).toEqual([DIRECT_UNSUPPORTED]);
    expect(handled).toEqual([]);

    // a served one: "accepted", then the handler owns the stream
    const ok = await open(port);
    const okBytes: Buffer[] = [];
    ok.on('data', (d) => okBytes.push(d));
    ok.write(encodePreface('/mmogit/msg/2.0.0'));
    await waitFor(() => handled.length === 1 && okBytes.length > 0);
    expect([...Buffer.concat(okBytes)]).toEqual([DIRECT_ACCEPTED]);
    for (const s of [p2, p3, ok]) s.destroy();

    // silent: closed by the preface deadline, never before it (timers do not fire early)
    const short = await carrier({ prefaceTimeoutMs: 300 });
    const silent = await open(short);
    const ms = await closedAfter(silent);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(LONG);
  });

  it('listens on a Unix socket of mode 0600 and removes it on close', async () => {
    const base = await loopbackNode(AgentKey.random().onion, new Map());
    stops.push(() => base.stop());
    const path = join(tmp, 'messaging.sock');
    const direct = await startDirectMessaging({
      base,
      openStream: async () => {
        throw new Error('unused');
      },
      protocols: ['/mmogit/msg/2.0.0'],
      listen: { path },
    });
    expect(direct.port).toEqual({ virtualPort: DIRECT_MESSAGING_PORT, target: `unix:${path}` });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await direct.close();
    expect(existsSync(path)).toBe(false);
  });
});

describe('direct messaging preface', () => {
  const over = async (bytes: Uint8Array) => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const c = await connectTo((server.address() as net.AddressInfo).port);
    const s = await accepted;
    c.end(bytes);
    try {
      return await readPreface(channelFromDuplex(s));
    } finally {
      c.destroy();
      s.destroy();
      server.close();
    }
  };

  it('round-trips a protocol id', async () => {
    expect(await over(encodePreface('/mmogit/msg/2.0.0'))).toBe('/mmogit/msg/2.0.0');
  });

  it('refuses other magic, a bad length and a non-protocol id as ERR_BAD_FRAME; refuses to encode a bad id', async () => {
    const good = encodePreface('/mmogit/msg/2.0.0');
    const wrongMagic = Uint8Array.from(good);
    wrongMagic[0] = 0x4d;
    const longLength = Uint8Array.from(good);
    longLength[16] = 200;
    const notId = Uint8Array.from(good);
    notId[17] = 0x61; // no leading '/'
    for (const bytes of [wrongMagic, longLength, notId]) {
      const e = await over(bytes).catch((x) => x);
      expect(e).toBeInstanceOf(MmogitError);
      expect(e.code).toBe('ERR_BAD_FRAME');
    }
    expect(() => encodePreface('no slash')).toThrow(MmogitError);
    expect(() => encodePreface(`/${'x'.repeat(64)}`)).toThrow(MmogitError);
  });
});
