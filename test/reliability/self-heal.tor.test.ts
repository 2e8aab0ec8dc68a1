// The self-healing agent on the private Tor network, with real tors: the onion self-probe, an onion that goes
// silently unreachable (tor forgets it: DEL_ONION behind the agent's back) and is published again, tor
// SIGKILLed under a running agent with a message queued while it is down (delivered exactly once), and the
// recovery time from the kill to the onion answering a stranger again, over several kills (printed).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { ReceivedMessage } from '../../src/agent/messaging.js';
import { BOOTSTRAP_TIMEOUT_MS } from '../../src/discovery/bootstrap.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { DEFAULT_ONION_VIRTUAL_PORT } from '../../src/tor/onion-service.js';
import { onionMultiaddr, peerIdFromOnion } from '../../src/transport/addr.js';
import { testNetwork } from '../helpers/tor.js';
import { reachable, summary, until } from './_helpers.js';

/** Kills measured by the recovery test (env MMOGIT_RECOVERY_KILLS, default 5, at most 20). */
const KILLS = Math.min(20, Math.max(1, Number(process.env.MMOGIT_RECOVERY_KILLS ?? 5)));

let root: string;
let alice: Agent;
let bob: Agent;
const aliceMetrics = new AgentMetrics();

beforeAll(async () => {
  const net = await testNetwork();
  root = await mkdtemp(join(tmpdir(), 'mmogit-heal-'));
  alice = (await Agent.init({ configDir: join(root, 'alice') })).agent;
  bob = (await Agent.init({ configDir: join(root, 'bob') })).agent;
  // bob is alice's DHT bootstrap, so the re-join after a restart has a peer to dial whether or not the network
  // runs a bootstrap agent (the test run's own network does not; `mmogit testnet up` starts one)
  await bob.start({ network: net.dir, timeoutMs: 90_000, selfProbe: false });
  const boot = onionMultiaddr(
    bob.address,
    DEFAULT_ONION_VIRTUAL_PORT,
    peerIdFromOnion(bob.address).toString(),
  );
  await Promise.all([
    alice.start({
      network: net.dir,
      bootstrap: [boot.toString()],
      timeoutMs: 90_000,
      metrics: aliceMetrics,
      // Fast probing for the test; the defaults are minutes (src/agent/supervisor.ts).
      selfProbe: { firstProbeMs: 0, intervalMs: 2_000, retryMs: 1_000, timeoutMs: 10_000 },
      torRestartLimit: { max: KILLS + 5, windowMs: 10 * 60_000 },
    }),
  ]);
}, 200_000);

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await rm(root, { recursive: true, force: true });
});

const health = () => alice.net().status().health;
/** One sample of alice's metrics (0 when absent). */
async function metricValue(series: string): Promise<number> {
  const text = await aliceMetrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
const events = (type: string) =>
  alice
    .net()
    .status()
    .events.filter((e) => e.type === type);

describe('self-healing agent', () => {
  it('probes its own onion through fresh circuits; status and metrics show the last probe', async () => {
    const probe = await until(() => health().lastProbe?.ok && health().lastProbe, 30_000, 'a good probe');
    expect(probe.stage).toBeUndefined();
    expect(probe.descriptorMs).toBeGreaterThanOrEqual(0);
    expect(probe.connectMs).toBeGreaterThan(0);
    expect(Date.parse(probe.time)).toBeGreaterThan(Date.now() - 30_000);
    expect(health().state).toBe('up');
    const text = await aliceMetrics.registry.metrics();
    expect(text).toMatch(/^mmogit_onion_probes_total\{result="ok"\} [1-9]/m);
    expect(text).toContain('mmogit_onion_probe_success 1');
    expect(text).toContain('mmogit_tor_state{state="up"} 1');
  });

  it('an onion tor silently forgot is noticed by the probe and published again', async () => {
    const before = health().republishes;
    // The fault: tor drops the service (as when its descriptor or introduction points are lost), while the
    // agent still believes it is published.
    await alice.net().tor.controller.delOnion(alice.key.serviceId);
    const t0 = Date.now();
    await until(() => health().republishes > before, 60_000, 'a re-publication', 200);
    const good = await until(
      () => {
        const p = health().lastProbe;
        return p?.ok && Date.parse(p.time) > t0 && p;
      },
      30_000,
      'a good probe after the re-publication',
    );
    console.log(
      `[reliability] silent onion loss: re-published and reachable again ${Date.parse(good.time) - t0} ms after DEL_ONION`,
    );
    expect(events('probe-failed').length).toBeGreaterThanOrEqual(2);
    expect(events('onion-republished').at(-1)?.detail).toBe('probe');
    expect(await alice.net().tor.controller.getInfo('onions/current')).toContain(alice.key.serviceId);
    expect(await reachable(bob.net().tor.socksPort, alice.address, DEFAULT_ONION_VIRTUAL_PORT, 30_000)).toBe(
      true,
    );
    expect(await aliceMetrics.registry.metrics()).toMatch(
      /^mmogit_onion_republishes_total\{reason="probe",result="ok"\} [1-9]/m,
    );
  }, 120_000);

  it('tor SIGKILLed: restarted, same onion, DHT re-joined and advert re-published; a message queued while tor was down is delivered exactly once', async () => {
    await alice.advertise(['memory_sync']);
    const adverts = () => metricValue('mmogit_adverts_published_total{result="ok"}');
    const advertsBefore = await adverts();
    // Counted from the agent's `event` stream, not status().events: that keeps the last 50, and a busy machine's
    // probe events can push an older bootstrap out while the new one comes in, so a count there can stand still.
    const seen: { type: string; detail?: string }[] = [];
    const onEvent = (e: { type: string; detail?: string }) => seen.push(e);
    alice.on('event', onEvent);
    const got: ReceivedMessage[] = [];
    bob.on('message', (m) => got.push(m));
    const tor = alice.net().tor;
    const oldPid = tor.pid!;
    const died = new Promise((r) => tor.once('died', r));
    process.kill(oldPid, 'SIGKILL');
    await died;
    expect(health().state).toBe('restarting');
    // tor is down now. The first attempt is cut short so the message is queued whatever the restart's pace
    // (a restart can beat a normal first attempt): it waits in the outbox while tor is down.
    const sent = await alice.net().send(bob.address, 'sent while my tor was down', { timeoutMs: 1 });
    expect(sent.status).toBe('queued');
    expect(alice.net().status().outbox).toBe(1);

    const delivered = await until(() => got.find((m) => m.id === sent.id), 90_000, 'the queued message');
    expect(delivered).toMatchObject({
      from: alice.address,
      text: 'sent while my tor was down',
      verified: true,
    });
    await until(() => alice.net().status().outbox === 0, 30_000, 'the outbox to empty');
    expect(tor.pid).not.toBe(oldPid);
    expect(await tor.controller.getInfo('onions/current')).toContain(alice.key.serviceId);
    await until(() => health().lastRecovery, 90_000, 'the recovery to be measured');
    // Exactly once: no second copy arrives, in events or in the store.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(got.filter((m) => m.id === sent.id)).toHaveLength(1);
    expect((await bob.inbox()).filter((m) => m.id === sent.id)).toHaveLength(1);
    expect(events('tor-died').length).toBeGreaterThanOrEqual(1);
    // Re-joined: one more bounded DHT bootstrap after the restart, and the advertisement published again.
    // The re-join starts once the onion answers its probe and is bounded by the bootstrap's own budget.
    await until(
      () => {
        const failed = seen.find((e) => e.type === 'dht-bootstrap-failed');
        if (failed) throw new Error(`re-join failed: ${failed.detail}`);
        // the re-join runs after the heal found the onion reachable again: a bootstrap before that is not it
        const healed = seen.findIndex((e) => e.type === 'onion-reachable');
        return healed >= 0 && seen.slice(healed).some((e) => e.type === 'dht-bootstrap');
      },
      BOOTSTRAP_TIMEOUT_MS + 15_000,
      'a DHT bootstrap after the restart',
    )
      .catch((e: unknown) => {
        // what the agent did meanwhile, for the reader of a failed run
        throw new Error(
          `${(e as Error).message}; events since the kill: ${seen.map((x) => x.type).join(', ')}`,
        );
      })
      .finally(() => alice.off('event', onEvent));
    await until(async () => (await adverts()) > advertsBefore, 60_000, 'the advert re-published');
    const text = await aliceMetrics.registry.metrics();
    expect(text).toMatch(/^mmogit_tor_restarts_total\{result="ok"\} [1-9]/m);
    expect(text).toMatch(/^mmogit_messages_sent_total\{status="queued"\} 1$/m);
    expect(text).toMatch(/^mmogit_messages_delivered_total [1-9]/m);
  }, 420_000);

  it(
    `recovery time from SIGKILL to the onion reachable from another tor, over ${KILLS} kills`,
    async () => {
      const outside: number[] = [];
      const inside: number[] = [];
      for (let i = 0; i < KILLS; i++) {
        const tor = alice.net().tor;
        const restarts = health().restarts;
        const died = new Promise((r) => tor.once('died', r));
        const t0 = Date.now();
        process.kill(tor.pid!, 'SIGKILL');
        await died;
        // A stranger's view: bob's tor opens a stream to alice's onion on fresh circuits, until one works.
        await until(
          () => reachable(bob.net().tor.socksPort, alice.address, DEFAULT_ONION_VIRTUAL_PORT, 10_000),
          120_000,
          `alice's onion after kill ${i + 1}`,
          0,
        );
        outside.push(Date.now() - t0);
        // The agent's own view (its probe), before the next kill.
        const rec = await until(
          () =>
            health().restarts > restarts &&
            health().lastRecovery &&
            Date.parse(health().lastRecovery!.lostAt) >= t0 &&
            health().lastRecovery,
          120_000,
          `the supervisor's recovery ${i + 1}`,
        );
        inside.push(rec.ms);
      }
      const o = summary(outside);
      const s = summary(inside);
      console.log(
        `[reliability] tor SIGKILL -> onion reachable, ${KILLS} kills: from another tor median ${o.median} ms, ` +
          `min ${o.min}, max ${o.max} (${outside.join(', ')}); own probe median ${s.median} ms, max ${s.max} (${inside.join(', ')})`,
      );
      expect(outside).toHaveLength(KILLS);
      expect(health().state).toBe('up');
    },
    60_000 + KILLS * 150_000,
  );
});
