// A failed standby build is tried again (src/mesh/mesh.ts #replenish): in-process relays on 127.0.0.1, one of
// them down (nothing listens on its port: the dial is refused) and, in the first test, back on the same port.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import type { RelayInfo } from '../../src/mesh/circuit.js';
import { exitPolicyFrom } from '../../src/mesh/exit-policy.js';
import { Mesh, type MeshEvents, nowEpochMs } from '../../src/mesh/mesh.js';
import { Relay } from '../../src/mesh/relay.js';
import { sinkSource, startRelays } from './_helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A relay that is down: its key and a port on 127.0.0.1 where nothing listens (yet). */
async function downRelay(): Promise<{ info: RelayInfo; key: AgentKey; start: () => Promise<Relay> }> {
  const key = AgentKey.random();
  const probe = new Relay({ key, exitPolicy: exitPolicyFrom([]) });
  const { port } = await probe.listen('127.0.0.1', 0);
  await probe.close();
  const info: RelayInfo = {
    publicKey: key.publicKey,
    onion: key.onion,
    tcp: { host: '127.0.0.1', port },
    exitPolicy: probe.policy,
  };
  return {
    info,
    key,
    start: async () => {
      const relay = new Relay({ key, exitPolicy: exitPolicyFrom([]) });
      await relay.listen('127.0.0.1', port);
      cleanups.push(() => relay.close());
      return relay;
    },
  };
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

describe('mesh standby retry', () => {
  it('a standby whose first build failed (its guard down) is built once the guard is back', async () => {
    const src = await sinkSource(1_000);
    cleanups.push(() => void src.server.close());
    // 2 hops: an exit and two guards; the primary takes the live guard, so the standby needs the other
    const exit = await startRelays(1, { exitTo: [`127.0.0.1:${src.port}`] });
    const up = await startRelays(1);
    cleanups.push(exit.close, up.close);
    const down = await downRelay();
    const mesh = new Mesh({ relays: [...exit.infos, ...up.infos, down.info], hops: 2 });
    cleanups.push(() => mesh.close());
    // the standby's build fails at its guard (the dial is refused); a failure before the primary was built
    // is the primary's first try, which then took the live guard
    let primaryBuilt = false;
    mesh.on('circuit:built', (e) => {
      if (e.role === 'primary') primaryBuilt = true;
    });
    const failed = next(mesh, 'circuit:failed', (e) => primaryBuilt && e.relay === down.info.onion, 15_000);
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    cleanups.push(() => void stream.destroy());
    const first = await failed;
    expect(mesh.circuits().map((c) => c.role)).toEqual(['primary']);
    expect(mesh.circuits()[0]?.path[0]).toBe(up.infos[0]?.onion);
    // the guard comes back on its address: the retry finds it (before the fix nothing tried again)
    await down.start();
    const built = await next(mesh, 'circuit:built', (e) => e.role === 'standby', 10_000);
    expect(built.path).toEqual([down.info.onion, exit.infos[0]?.onion]);
    expect(nowEpochMs() - first.at).toBeGreaterThanOrEqual(900); // it waited for the backoff
    // built, then linked to the set (LINK → LINKED) before it is the standby
    const standby = () => mesh.circuits().find((c) => c.role === 'standby');
    for (let i = 0; i < 100 && !standby(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(standby()?.path[0]).toBe(down.info.onion);
  }, 30_000);

  it('retries back off (doubling to the cap) and stop when the mesh closes', async () => {
    const src = await sinkSource(1_000);
    cleanups.push(() => void src.server.close());
    const exit = await startRelays(1, { exitTo: [`127.0.0.1:${src.port}`] });
    const up = await startRelays(1);
    cleanups.push(exit.close, up.close);
    const down = await downRelay();
    const mesh = new Mesh({
      relays: [...exit.infos, ...up.infos, down.info],
      hops: 2,
      standbyRetry: { initialMs: 150, maxMs: 400 },
    });
    let closed = false;
    const retries: { inMs: number; at: number; afterClose: boolean }[] = [];
    mesh.on('standby:retry', (e) => void retries.push({ inMs: e.inMs, at: e.at, afterClose: closed }));
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    cleanups.push(() => void stream.destroy());
    for (let i = 0; i < 100 && retries.length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(retries.slice(0, 4).map((r) => r.inMs)).toEqual([150, 300, 400, 400]);
    // each try came no sooner than its delay after the previous failure
    for (let i = 1; i < 4; i++)
      expect((retries[i]?.at ?? 0) - (retries[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(
        (retries[i - 1]?.inMs ?? 0) - 5,
      );
    closed = true;
    await mesh.close();
    const n = retries.length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(retries.length).toBe(n);
    expect(retries.some((r) => r.afterClose)).toBe(false);
  }, 30_000);
});
