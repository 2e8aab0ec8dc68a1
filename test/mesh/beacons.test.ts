// The circuit beacons' miss rule (src/mesh/beacons.ts): a beacon is missed only after half an
// interval of time this process could run, so a stall of the client is not the path's silence, while a hop
// that really went silent is still suspected after BEACON_MISSES_SUSPECT intervals. In-process relays on
// 127.0.0.1; a stall is a real busy loop; a silent hop is a real proxy that stops forwarding.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_BEACON_INTERVAL_MS } from '../../src/mesh/_wire.js';
import { Circuit, type RelayInfo } from '../../src/mesh/circuit.js';
import type { MeshError } from '../../src/mesh/errors.js';
import { LinkPool } from '../../src/mesh/link-pool.js';
import { startRelays } from './_helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy to `port` on 127.0.0.1 that forwards until `blackhole()`, then drops everything (no FIN). */
async function proxyTo(port: number): Promise<{ port: number; blackhole: () => void }> {
  let dropped = false;
  const sockets: Socket[] = [];
  const proxy = createServer((inbound) => {
    const outbound = tcpConnect(port, '127.0.0.1');
    sockets.push(inbound, outbound);
    for (const s of [inbound, outbound]) s.on('error', () => {});
    inbound.on('data', (d) => void (dropped || outbound.write(d)));
    outbound.on('data', (d) => void (dropped || inbound.write(d)));
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  return {
    port: (proxy.address() as AddressInfo).port,
    blackhole: () => {
      dropped = true;
    },
  };
}

/** 3 in-process relays (their own links keep alive for 15 s of silence) and a circuit through them. */
async function circuit(path?: (infos: RelayInfo[]) => Promise<RelayInfo[]>) {
  const { infos, close } = await startRelays(3, { intervalMs: 5_000 });
  cleanups.push(close);
  const pool = new LinkPool();
  cleanups.push(() => pool.closeAll());
  const suspects: { hop: number; why: string; at: number }[] = [];
  const circ = await Circuit.build(path ? await path(infos) : infos, {
    pool,
    events: { onSuspect: (hop, why) => suspects.push({ hop, why, at: performance.now() }) },
  });
  cleanups.push(() => circ.destroy());
  circ.startBeacons();
  return { circ, suspects };
}

describe('circuit beacons: the miss rule', () => {
  it("stalls of this process right after a beacon went out are not the path's silence", async () => {
    const { circ, suspects } = await circuit();
    await sleep(DEFAULT_BEACON_INTERVAL_MS * 3); // beacons answered, RTTs learned
    expect(circ.health.at(-1)?.samples).toBeGreaterThan(0);
    // Three beacons to the exit in a row are each followed at once by a 900 ms busy loop: the (equally stalled)
    // relays cannot answer before the next tick. By wall time the exit missed beacons twice in a row (the rule before:
    // suspect 'missed'); by the time this process could run, none was due yet.
    const exit = circ.length;
    const probe = circ.probe.bind(circ);
    let stalls = 3;
    circ.probe = (j: number) => {
      probe(j);
      if (j !== exit || stalls === 0) return;
      stalls--;
      const until = performance.now() + 900;
      while (performance.now() < until) {
        // busy: no timer, no I/O runs
      }
    };
    while (stalls > 0) await sleep(10);
    // and one plain 2 s busy loop
    const until = performance.now() + 2_000;
    while (performance.now() < until) {
      // busy
    }
    const answered = circ.health.at(-1)?.samples ?? 0;
    await sleep(DEFAULT_BEACON_INTERVAL_MS * 3);
    expect(suspects).toEqual([]);
    expect(circ.alive).toBe(true);
    // beacons flowed again after the stalls
    expect(circ.health.at(-1)?.samples).toBeGreaterThan(answered);
  }, 20_000);

  it('a hop that goes silent with its sockets open is still suspected after two missed beacons', async () => {
    let hole: { blackhole: () => void } | undefined;
    const { circ, suspects } = await circuit(async (infos) => {
      // hop 1 reaches hop 2 through the proxy (its link lives 15 s without answers, so no TRUNCATED first)
      const second = infos[1] as RelayInfo;
      const p = await proxyTo(second.tcp?.port as number);
      hole = p;
      return [
        infos[0] as RelayInfo,
        { ...second, tcp: { host: '127.0.0.1', port: p.port } },
        infos[2] as RelayInfo,
      ];
    });
    await sleep(DEFAULT_BEACON_INTERVAL_MS * 3);
    expect(suspects).toEqual([]);
    const from = performance.now();
    hole?.blackhole();
    while (suspects.length === 0 && performance.now() - from < 10_000) await sleep(50);
    expect(suspects[0]).toMatchObject({ why: 'missed' });
    expect(circ.alive).toBe(true);
    // two intervals of misses, judged on the 500 ms tick; the bound leaves a loaded machine's timer lag room
    expect((suspects[0]?.at ?? Infinity) - from).toBeLessThan(DEFAULT_BEACON_INTERVAL_MS * 6);
  }, 20_000);

  it('a middle whose link to the exit goes silent reports TRUNCATED(link-timeout), not link-lost', async () => {
    // relays with the default 500 ms keepalive: hop 2's link to hop 3 (through the proxy) dies after ~1.5 s
    const { infos, close } = await startRelays(3);
    cleanups.push(close);
    const third = infos[2] as RelayInfo;
    const p = await proxyTo(third.tcp?.port as number);
    const pool = new LinkPool();
    cleanups.push(() => pool.closeAll());
    const closed = new Promise<MeshError>((r) => {
      void Circuit.build(
        [
          infos[0] as RelayInfo,
          infos[1] as RelayInfo,
          { ...third, tcp: { host: '127.0.0.1', port: p.port } },
        ],
        {
          pool,
          events: { onClosed: r },
        },
      ).then((c) => {
        cleanups.push(() => c.destroy());
        p.blackhole();
      });
    });
    const error = await closed;
    expect(error).toMatchObject({ details: { reason: 'link-timeout', hop: 3 } });
  }, 20_000);
});
