// The dead-link rule of a mesh link (src/mesh/link.ts, src/mesh/_silence.ts): 3 of the neighbour's intervals
// with nothing received, not counting time this process was stalled. Real links (the PQ channel over TCP on
// 127.0.0.1); a stall is a real busy loop; a silent neighbour is a real proxy that stops forwarding.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { SilenceMeter } from '../../src/mesh/_silence.js';
import {
  BODY_LEN,
  CMD_RELAY_16K,
  DEFAULT_BEACON_INTERVAL_MS,
  LINK_DEAD_INTERVALS,
} from '../../src/mesh/_wire.js';
import { encodeCell } from '../../src/mesh/cells.js';
import type { MeshError } from '../../src/mesh/errors.js';
import { acceptLink, dialLink, type Link, tuneSocket } from '../../src/mesh/link.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A link pair on 127.0.0.1: `dial` is the client end, `accepted` the relay end. */
async function linkPair(
  via?: (port: number) => Promise<number>,
  dialOptions: { sendTimeoutMs?: number } = {},
): Promise<{ dial: Link; accepted: Link }> {
  const key = AgentKey.random();
  let resolveAccepted: (l: Link) => void = () => {};
  const accepted = new Promise<Link>((r) => {
    resolveAccepted = r;
  });
  const server: Server = createServer((socket) => {
    tuneSocket(socket);
    socket.on('error', () => {});
    void acceptLink(channelFromDuplex(socket), key).then(resolveAccepted);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => void server.close());
  const port = (server.address() as AddressInfo).port;
  const dialPort = via ? await via(port) : port;
  const dial = await dialLink(
    { publicKey: key.publicKey, onion: key.onion, tcp: { host: '127.0.0.1', port: dialPort } },
    { self: AgentKey.random(), timeoutMs: 10_000, ...dialOptions },
  );
  const acc = await accepted;
  cleanups.push(
    () => dial.close(),
    () => acc.close(),
  );
  return { dial, accepted: acc };
}

function closedWith(link: Link): Promise<{ error: MeshError; at: number }> {
  return new Promise((r) => link.onClose((error) => r({ error, at: performance.now() })));
}

describe('SilenceMeter', () => {
  it('takes late ticks out of the silence, and counts all of a silence during which the loop ran on time', () => {
    const m = new SilenceMeter(250, 0);
    m.received(100);
    // ticks on time: every millisecond since the receipt is silence
    for (let t = 250; t <= 1500; t += 250) m.tick(t);
    expect(m.silentMs(1500)).toBe(1400);
    // the loop blocked: the next tick comes 2,000 ms late; that is not the neighbour's silence
    m.tick(3750);
    expect(m.stalledSinceReceive).toBe(2000);
    expect(m.silentMs(3750)).toBe(1650);
    // a receipt resets both
    m.received(3760);
    expect(m.silentMs(4000)).toBe(240);
    expect(m.stalledSinceReceive).toBe(0);
  });
});

describe('mesh link: dead-link rule', () => {
  it('a 2 s stall of this process does not kill its links, and keepalives flow again at once', async () => {
    // Both ends in this process: the busy loop stops both, as a loaded machine stops a relay and its neighbour.
    // What each end received just before the stall and right after it is what counts: the 2 s in between
    // are this process's stall, not the neighbour's silence. (The rule before this fix measured wall time
    // since the last receipt: both links died at the first on-time tick after the stall.)
    const { dial, accepted } = await linkPair();
    const dialClosed = closedWith(dial);
    const accClosed = closedWith(accepted);
    let closed: string | null = null;
    void Promise.race([dialClosed, accClosed]).then((c) => {
      closed = c.error.message;
    });
    await sleep(DEFAULT_BEACON_INTERVAL_MS * 2); // keepalives exchanged, intervals learned
    const inBefore = dial.stats.cellsIn + accepted.stats.cellsIn;
    const until = performance.now() + 2_000;
    while (performance.now() < until) {
      // busy: no timer, no I/O runs
    }
    await sleep(DEFAULT_BEACON_INTERVAL_MS * LINK_DEAD_INTERVALS);
    expect(closed).toBeNull();
    expect(dial.closed || accepted.closed).toBe(false);
    // the links stayed live: keepalives arrived after the stall
    expect(dial.stats.cellsIn + accepted.stats.cellsIn).toBeGreaterThan(inBefore + 2);
  }, 15_000);

  it('a neighbour that goes silent with its socket open is still declared dead after 3 intervals', async () => {
    // A proxy between the ends that stops forwarding (a black-holed route): no FIN, no RST, just silence.
    let blackhole = false;
    const sockets: Socket[] = [];
    const proxy = createServer((inbound) => {
      const outbound = tcpConnect(proxyTarget, '127.0.0.1');
      sockets.push(inbound, outbound);
      for (const s of [inbound, outbound]) s.on('error', () => {});
      inbound.on('data', (d) => void (blackhole || outbound.write(d)));
      outbound.on('data', (d) => void (blackhole || inbound.write(d)));
    });
    let proxyTarget = 0;
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    cleanups.push(
      () => void proxy.close(),
      () => {
        for (const s of sockets) s.destroy();
      },
    );
    const { dial } = await linkPair(async (port) => {
      proxyTarget = port;
      return (proxy.address() as AddressInfo).port;
    });
    const closed = closedWith(dial);
    await sleep(DEFAULT_BEACON_INTERVAL_MS * 2);
    expect(dial.closed).toBe(false);
    const from = performance.now();
    blackhole = true;
    const { error, at } = await closed;
    expect(error).toMatchObject({ code: 'ERR_MESH', details: { reason: 'timeout' } });
    expect(error.message).toMatch(/silent for \d+ ms/);
    // the rule: 3 × 500 ms after the last receipt (at most one keepalive interval before the black hole),
    // judged on a tick every 250 ms; the upper bound leaves a loaded machine's timer lag some room
    const detectMs = at - from;
    expect(detectMs).toBeGreaterThanOrEqual(LINK_DEAD_INTERVALS * DEFAULT_BEACON_INTERVAL_MS - 600);
    expect(detectMs).toBeLessThan(LINK_DEAD_INTERVALS * DEFAULT_BEACON_INTERVAL_MS + 1_000);
  }, 15_000);

  it('a cell given as parts arrives as one cell, in order with whole ones, and is counted once', async () => {
    const got: Uint8Array[] = [];
    const key = AgentKey.random();
    const arrived = new Promise<void>((resolve) => {
      const server: Server = createServer((socket) => {
        tuneSocket(socket);
        socket.on('error', () => {});
        void acceptLink(channelFromDuplex(socket), key, {
          onUnknownCell: (_l, cell) => {
            got.push(Buffer.concat([Buffer.from([cell.cmd]), cell.body]));
            if (got.length === 2) resolve();
          },
        }).then((l) => cleanups.push(() => l.close()));
      });
      server.listen(0, '127.0.0.1');
      cleanups.push(() => void server.close());
      void once(server, 'listening').then(async () => {
        const port = (server.address() as AddressInfo).port;
        const dial = await dialLink(
          { publicKey: key.publicKey, onion: key.onion, tcp: { host: '127.0.0.1', port } },
          { self: AgentKey.random(), timeoutMs: 10_000 },
        );
        cleanups.push(() => dial.close());
        const body = Buffer.alloc(BODY_LEN[CMD_RELAY_16K] as number, 5);
        const whole = encodeCell(0x8000_0002, CMD_RELAY_16K, body);
        // the same cell cut in three parts, the first holding only the header
        dial.send([whole.subarray(0, 5), whole.subarray(5, 1000), whole.subarray(1000)], 0x8000_0002);
        expect(dial.queuedFor(0x8000_0002)).toBe(whole.length);
        dial.send(encodeCell(0x8000_0003, CMD_RELAY_16K, Buffer.alloc(body.length, 6)), 0x8000_0003);
      });
    });
    await arrived;
    expect(got.map((c) => [c[0], c[1], c.length])).toEqual([
      [CMD_RELAY_16K, 5, 1 + (BODY_LEN[CMD_RELAY_16K] as number)],
      [CMD_RELAY_16K, 6, 1 + (BODY_LEN[CMD_RELAY_16K] as number)],
    ]);
  });

  it('a write that cannot drain (the neighbour stopped reading) ends the link with a timeout', async () => {
    // A proxy that keeps carrying the neighbour's keepalives to us but stops reading what we send: our
    // socket's buffers fill and the write waits for 'drain' that never comes. Before the send deadline was
    // enforced by the link, that write waited for ever (a socket's write ignored the session's timeout signal).
    const sockets: Socket[] = [];
    let proxyTarget = 0;
    const proxy = createServer((inbound) => {
      const outbound = tcpConnect(proxyTarget, '127.0.0.1');
      sockets.push(inbound, outbound);
      for (const s of [inbound, outbound]) s.on('error', () => {});
      inbound.on('data', (d) => void outbound.write(d));
      outbound.on('data', (d) => void inbound.write(d));
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    cleanups.push(
      () => void proxy.close(),
      () => {
        for (const s of sockets) s.destroy();
      },
    );
    const { dial, accepted } = await linkPair(
      async (port) => {
        proxyTarget = port;
        return (proxy.address() as AddressInfo).port;
      },
      { sendTimeoutMs: 300 },
    );
    const circ = dial.allocCircId();
    accepted.register(circ, { onCell: () => {}, onLinkClosed: () => {} });
    const closed = closedWith(dial);
    (sockets[0] as Socket).pause(); // the proxy stops reading from us
    const body = new Uint8Array(BODY_LEN[CMD_RELAY_16K] as number);
    // 64 MiB queued: far more than the loopback socket buffers hold
    for (let i = 0; i < 4096; i++) dial.send(encodeCell(circ, CMD_RELAY_16K, body), circ);
    const { error } = await closed;
    expect(error).toMatchObject({ code: 'ERR_MESH', details: { reason: 'timeout' } });
    expect(error.message).toMatch(/did not drain/);
  }, 15_000);
});
