// The lost-relay hold-off (src/mesh/hold-off.ts, docs/mesh.md §Self-healing, Plan): the rule on an injected
// clock, then in-process relays on 127.0.0.1 with 2 hops (an exit and two guards, so the standby leg needs the
// guard the primary does not use): the standby's guard is closed, and comes back on a new port (re-added) or
// on its old one (not re-added). Before the fix the guard stayed held off for 30 s either way.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import type { RelayInfo } from '../../src/mesh/circuit.js';
import { exitPolicyFrom } from '../../src/mesh/exit-policy.js';
import { RelayHoldOff } from '../../src/mesh/hold-off.js';
import { Mesh, type MeshEvents, nowEpochMs } from '../../src/mesh/mesh.js';
import { Relay } from '../../src/mesh/relay.js';
import { sinkSource, startRelays } from './_helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function info(onion: string, port: number): RelayInfo {
  return { onion, publicKey: new Uint8Array(32), tcp: { host: '127.0.0.1', port } };
}

describe('RelayHoldOff (injected clock)', () => {
  it('holds a lost relay off while enough others are usable, and lets it through early in a small set', () => {
    let now = 0;
    const h = new RelayHoldOff({ ms: 30_000, earlyRetryMs: 1_000, now: () => now });
    const relays = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((o, i) => info(o, 1000 + i));
    h.lost(relays[0] as RelayInfo, relays[0]);
    // 6 others usable, 6 needed: held off, however long past its early-try time (until 30 s)
    now = 5_000;
    expect(h.avoid(relays, () => true, 6)).toEqual(['a']);
    // only 5 usable: its early try is due (1 s after the loss), so it is let through
    expect(h.avoid(relays.slice(0, 6), () => true, 6)).toEqual([]);
    h.trying('a');
    h.lost(relays[0] as RelayInfo, relays[0]); // the early try failed
    // the next early try waits the doubled gap (2 s), then 4 s
    now = 6_999;
    expect(h.avoid(relays.slice(0, 6), () => true, 6)).toEqual(['a']);
    now = 7_000;
    expect(h.avoid(relays.slice(0, 6), () => true, 6)).toEqual([]);
    h.trying('a');
    h.lost(relays[0] as RelayInfo, relays[0]);
    now = 10_999;
    expect(h.avoid(relays.slice(0, 6), () => true, 6)).toEqual(['a']);
    // a circuit through it was built: it leaves the hold-off
    expect(h.alive('a')).toBe(true);
    expect(h.has('a')).toBe(false);
    // and the hold-off ends on its own after 30 s
    h.lost(relays[1] as RelayInfo, relays[1]);
    now += 29_999;
    expect(h.has('b')).toBe(true);
    now += 1;
    expect(h.has('b')).toBe(false);
  });

  it('a new address releases the relay; the same one does not; a failure of an old address is ignored', () => {
    let now = 0;
    const h = new RelayHoldOff({ now: () => now });
    const old = info('a', 1000);
    const moved = info('a', 2000);
    h.lost(old, old);
    expect(h.readded(old)).toBe(false); // an unchanged descriptor (an advert outlives its relay)
    expect(h.has('a')).toBe(true);
    expect(h.readded(moved)).toBe(true);
    expect(h.has('a')).toBe(false);
    // a circuit built on the old address fails after the relay was re-added with the new one
    now = 10;
    h.lost(old, moved);
    expect(h.has('a')).toBe(false);
  });
});

/** An exit to `target` and two guards (their keys kept, to restart them), in this process. */
async function threeRelays(target: string) {
  const exit = await startRelays(1, { exitTo: [target] });
  cleanups.push(exit.close);
  const guards = new Map<string, { key: AgentKey; relay: Relay; info: RelayInfo }>();
  const start = async (key: AgentKey, port = 0) => {
    const relay = new Relay({ key, exitPolicy: exitPolicyFrom([]) });
    const tcp = await relay.listen('127.0.0.1', port);
    cleanups.push(() => relay.close());
    const g = {
      key,
      relay,
      info: { publicKey: key.publicKey, onion: key.onion, tcp, exitPolicy: relay.policy },
    };
    guards.set(key.onion, g);
    return g;
  };
  for (let i = 0; i < 2; i++) await start(AgentKey.random());
  return { exit, guards, start };
}

/** The first `name` event matching `pred`, or an error after `ms`. */
function next<K extends keyof MeshEvents>(
  mesh: Mesh,
  name: K,
  pred: (e: MeshEvents[K][0]) => boolean,
  ms: number,
): Promise<MeshEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const on = (e: MeshEvents[K][0]) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's typed map cannot name K's listener here
      mesh.off(name, on as any);
      resolve(e);
    };
    const timer = setTimeout(() => {
      // biome-ignore lint/suspicious/noExplicitAny: as above
      mesh.off(name, on as any);
      reject(new Error(`no ${name} within ${ms} ms`));
    }, ms);
    // biome-ignore lint/suspicious/noExplicitAny: as above
    mesh.on(name, on as any);
  });
}

/** Polls until the mesh has a standby leg (bounded). */
async function standbyLeg(mesh: Mesh, ms: number) {
  const until = Date.now() + ms;
  for (;;) {
    const s = mesh.circuits().find((c) => c.role === 'standby');
    if (s || Date.now() > until) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A mesh over `relays` with a stream open, its standby built; returns the standby's guard. */
async function warmSet(relays: RelayInfo[], target: string, options: ConstructorParameters<typeof Mesh>[0]) {
  const mesh = new Mesh({ relays, hops: 2, ...options });
  cleanups.push(() => mesh.close());
  const stream = await mesh.connect(target);
  cleanups.push(() => void stream.destroy());
  const standby = await standbyLeg(mesh, 10_000);
  expect(standby).toBeDefined();
  return { mesh, guard: standby?.path[0] as string };
}

describe('mesh hold-off of a lost relay', () => {
  it('a relay re-added with a new address leaves the hold-off and the waiting standby build starts at once', async () => {
    const src = await sinkSource(1_000);
    cleanups.push(() => void src.server.close());
    const target = `127.0.0.1:${src.port}`;
    const { exit, guards, start } = await threeRelays(target);
    // the standby retry waits 60 s: only the re-add can start the build within this test
    const { mesh, guard } = await warmSet(
      [...exit.infos, ...[...guards.values()].map((g) => g.info)],
      target,
      {
        standbyRetry: { initialMs: 60_000, maxMs: 60_000 },
      },
    );
    const g = guards.get(guard);
    if (!g) throw new Error('standby guard unknown');
    const lost = next(mesh, 'circuit:failed', (e) => e.relay === guard && e.serial !== undefined, 10_000);
    const retry = next(mesh, 'standby:retry', () => true, 10_000);
    await g.relay.close();
    await lost;
    await retry; // the rebuild found no path (the only other guard is held off) and waits
    expect(mesh.circuits().map((c) => c.role)).toEqual(['primary']);
    const back = await start(g.key); // same key, a new port
    expect(back.info.tcp?.port).not.toBe(g.info.tcp?.port);
    const built = next(mesh, 'circuit:built', (e) => e.role === 'standby', 5_000);
    const readdedAt = nowEpochMs();
    mesh.addRelay(back.info);
    const e = await built;
    expect(e.path).toEqual([guard, exit.infos[0]?.onion]);
    expect(e.path[0]).toBe(back.info.onion);
    expect(nowEpochMs() - readdedAt).toBeLessThan(5_000); // not the 30 s hold-off, nor the 60 s retry
    expect((await standbyLeg(mesh, 2_000))?.path[0]).toBe(guard);
  }, 40_000);

  it('in a small set a relay back on its old address is tried early, with a doubling gap while it stays dead', async () => {
    const src = await sinkSource(1_000);
    cleanups.push(() => void src.server.close());
    const target = `127.0.0.1:${src.port}`;
    const { exit, guards, start } = await threeRelays(target);
    const { mesh, guard } = await warmSet(
      [...exit.infos, ...[...guards.values()].map((g) => g.info)],
      target,
      {
        standbyRetry: { initialMs: 200, maxMs: 2_000 },
        holdOff: { earlyRetryMs: 200 },
      },
    );
    const g = guards.get(guard);
    if (!g) throw new Error('standby guard unknown');
    const tries: number[] = [];
    mesh.on('circuit:failed', (e) => {
      if (e.relay === guard && e.serial === undefined) tries.push(e.at);
    });
    const lost = next(mesh, 'circuit:failed', (e) => e.relay === guard && e.serial !== undefined, 10_000);
    await g.relay.close();
    const lostAt = (await lost).at;
    // dead for 1.3 s: early tries 0.2 s after the loss, then gaps of ≥ 0.4, 0.8 s (load only delays them)
    await new Promise((r) => setTimeout(r, 1_300));
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.length).toBeLessThanOrEqual(3);
    expect((tries[0] ?? 0) - lostAt).toBeGreaterThanOrEqual(190);
    for (let i = 1; i < tries.length; i++)
      expect((tries[i] ?? 0) - (tries[i - 1] ?? 0)).toBeGreaterThanOrEqual(200 * 2 ** i - 10);
    // back on the same port, not re-added: a later early try builds the standby through it
    await start(g.key, g.info.tcp?.port);
    const e = await next(mesh, 'circuit:built', (x) => x.role === 'standby', 10_000);
    expect(e.path[0]).toBe(guard);
    expect(nowEpochMs() - lostAt).toBeLessThan(15_000); // well before the 30 s hold-off ends
  }, 40_000);
});
