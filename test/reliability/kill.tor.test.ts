// kill -9 of the real agent daemon (`mmogit tor start`, its own tor on the private network) mid-sync and
// mid-message-receive, restarted each time on the same config dir. After every kill: `git fsck --strict` is
// clean on its memory repository, every memory it reported stored is recalled, its outbox (messages queued for
// an agent that is offline) is intact, and after the restart every message its peer sent (acked or queued) is in
// its inbox exactly once; a sync cut by the kill completes on the next attempt. The peer is an in-process agent
// with its own tor. Runs per scenario: MMOGIT_KILL_RUNS (default 3; `npm run reliability -- kill` runs 100).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { RateLimitOptions } from '../../src/agent/rate-limit.js';
import { AgentKey } from '../../src/identity/keys.js';
import { DEFAULT_ONION_VIRTUAL_PORT } from '../../src/tor/onion-service.js';
import { runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';
import { until } from './_helpers.js';
import { addRendLog, diagnoseOnion, torsOf } from './kill-diagnose.js';
import { fsckStrict, kill9, killRuns, seededRandom, sleep, spawnCli, startDaemon } from './kill-harness.js';

const RUNS = killRuns(3);
/**
 * The daemon's inbound rate per peer (config.json `inboundRate`): the default's burst of 50, refilled at 50 a
 * second instead of 10. The senders still outrun it, so kills still catch messages refused as rate-limited and
 * queued, but a backlog drains five times faster: at the default a kill cost 40–70 s, mostly the drain's floor
 * ("The receive drain, measured" in docs/reliability.md), too slow for 100 runs.
 */
const RATE: RateLimitOptions = { capacity: 50, refillPerSecond: 50 };
const ENTRIES_PER_RUN = 40;

let root: string;
let network: string;
let home: string;
let peer: Agent;
let pid = 0;
let onion = '';
const offline = AgentKey.random().onion;
const queuedOffline: string[] = [];
/** `MMOGIT_KILL_TOR_LOG=<dir>`: both tors also log onion-service details there at info level (diagnostics). */
const torLogDir = process.env.MMOGIT_KILL_TOR_LOG;
let starts = 0;
const ownMemories: string[] = [];

const cli = (args: string[], timeoutMs = 120_000) => runCli([...args, '--config-dir', home], { timeoutMs });

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-kill-'));
  home = join(root, 'a');
  const init = await runCli(['init', '--json', '--config-dir', home]);
  expect(init.exitCode, init.stderr).toBe(0);
  onion = init.json<{ onion: string }>().onion;
  await writeFile(join(home, 'config.json'), JSON.stringify({ inboundRate: RATE }));
  peer = (await Agent.init({ configDir: join(root, 'peer') })).agent;
  // The long run syncs with the peer about 8 times a minute for over half an hour, past the default per-peer
  // rate (a burst of 10, then 120 an hour), which the peer would rightly refuse ("syncs too often"); this
  // test is about kills, so the peer allows that rate.
  await peer.start({
    network,
    timeoutMs: 120_000,
    selfProbe: false,
    syncQuota: { syncBurst: 1_000, syncsPerHour: 36_000 },
  });
  if (torLogDir) {
    await mkdir(torLogDir, { recursive: true });
    const s = peer.net().status();
    await addRendLog(
      { controlPort: s.controlPort ?? 0, dataDir: join(root, 'peer', 'tor') },
      join(torLogDir, 'peer-tor.log'),
    );
  }
  pid = await startLoggedDaemon();
  // a message for an agent that never comes up: it stays in the outbox through every kill
  const s = await cli(['send', offline, 'for an offline agent', '--json']);
  expect(s.exitCode, s.stderr).toBe(0);
  expect(s.json<{ status: string }>().status).toBe('queued');
  queuedOffline.push(s.json<{ id: string }>().id);
}, 300_000);

afterAll(async () => {
  await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
  await peer?.close();
  await rm(root, { recursive: true, force: true });
}, 60_000);

const sameOnion = (a: string, b: string) => a.replace(/\.onion$/, '') === b.replace(/\.onion$/, '');

/** Starts the daemon (with its tor's diagnostic log when asked for); resolves with its pid. */
async function startLoggedDaemon(): Promise<number> {
  const started = await startDaemon(home, network);
  starts++;
  if (torLogDir) {
    const state = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { controlPort: number };
    await addRendLog(
      { controlPort: state.controlPort, dataDir: join(home, 'tor') },
      join(torLogDir, `daemon-tor-${starts}.log`),
    );
  }
  return started;
}

/** Longest time a killed daemon's tor outlived it (it must exit once its owning control connection closes). */
let torLingerMaxMs = 0;

/**
 * SIGKILLs the daemon, then waits (bounded) for its tor to exit: tor took ownership (control-spec §3.23), so it
 * exits once the dead daemon's control connection closes. A tor that outlives it would hold the data dir.
 */
async function killDaemon(): Promise<void> {
  const dataDir = join(home, 'tor');
  const before = await torsOf(dataDir);
  await kill9(pid);
  const t0 = Date.now();
  // resolves with the tors left: none, or those still running after 10 s
  const left = await until(
    async () => {
      const now = await torsOf(dataDir);
      return now.length === 0 || Date.now() - t0 > 10_000 ? now : undefined;
    },
    12_000,
    "the killed daemon's tor to exit",
    25,
  );
  expect(left, `tors ${before.join(',')} still on ${dataDir} 10 s after the daemon was killed`).toEqual([]);
  torLingerMaxMs = Math.max(torLingerMaxMs, Date.now() - t0);
}

/** After a kill: fsck, restart, own memories and the outbox checked. */
async function restartAndCheck(what: string): Promise<void> {
  expect(await fsckStrict(home), `fsck after ${what}`).toBe('');
  const t0 = Date.now();
  pid = await startLoggedDaemon();
  process.stderr.write(`[kill] ${what}: daemon back in ${Date.now() - t0} ms\n`);
  const r = await cli(['recall', '--json', '--all', '--tag', 'own', '--limit', '100000']);
  const got = new Set(r.json<{ content: string; verified: boolean }[]>().map((e) => e.content));
  expect(
    ownMemories.filter((m) => !got.has(m)),
    `own memories lost after ${what}`,
  ).toEqual([]);
  const out = await cli(['outbox', '--json']);
  expect(out.exitCode, out.stderr).toBe(0);
  expect(
    out
      .json<{ id: string }[]>()
      .map((m) => m.id)
      .sort(),
    `outbox after ${what}`,
  ).toEqual([...queuedOffline].sort());
}

/**
 * Watches the peer's connections to the daemon that were open when it was killed: prints how long libp2p kept
 * counting them open (diagnostics: every dial reuses an open connection).
 */
function watchStale(run: number): { stop(): void } {
  const node = peer.net().node;
  const key = (c: { remoteAddr: string; direction: string }) => `${c.direction} ${c.remoteAddr}`;
  const toDaemon = () => node.connections().filter((c) => sameOnion(c.onion, onion));
  const at = new Set(toDaemon().map(key));
  const t0 = Date.now();
  let closed = false;
  const timer = setInterval(() => {
    const left = toDaemon().filter((c) => at.has(key(c)));
    if (left.length > 0) return;
    closed = true;
    clearInterval(timer);
    if (at.size > 0)
      process.stderr.write(
        `[kill] receive kill ${run}: ${at.size} connection(s) to the dead daemon closed after ${Date.now() - t0} ms (${[...at].join(', ')})\n`,
      );
  }, 100);
  timer.unref();
  return {
    stop() {
      if (!closed && toDaemon().some((c) => at.has(key(c)))) {
        process.stderr.write(
          `[kill] receive kill ${run}: connection(s) to the dead daemon still open ${Date.now() - t0} ms later: ${toDaemon()
            .filter((c) => at.has(key(c)))
            .map(key)
            .join(', ')}\n`,
        );
      }
      clearInterval(timer);
    },
  };
}

/** The restarted daemon's onion as both tors see it (printed when the peer's outbox does not drain). */
async function diagnose(): Promise<string> {
  const state = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8').catch(() => '{}')) as {
    controlPort?: number;
  };
  const status = peer.net().status();
  // the daemon's own view: its self-probe and supervisor events (probe failures, re-publishes)
  const torStatus = await cli(['tor', 'status', '--json'], 20_000).catch((e: Error) => ({
    stdout: e.message,
  }));
  const report = await diagnoseOnion({
    serviceId: onion.replace(/\.onion$/, ''),
    onionPort: DEFAULT_ONION_VIRTUAL_PORT,
    service: state.controlPort ? { controlPort: state.controlPort, dataDir: join(home, 'tor') } : undefined,
    client: {
      controlPort: status.controlPort ?? 0,
      socksPort: status.socksPort,
      dataDir: join(root, 'peer', 'tor'),
    },
    queued: peer.outbox(),
  });
  const conns = status.peers.filter((c) => sameOnion(c.onion, onion));
  return `${report}\npeer's libp2p connections to the daemon: ${JSON.stringify(conns)}\ndaemon's tor status: ${torStatus.stdout.slice(0, 4_000)}\npeer's events: ${JSON.stringify(status.events.slice(-10))}`;
}

async function rememberOwn(text: string): Promise<void> {
  const r = await cli(['remember', '-t', 'observation', text, '--tags', 'own', '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  ownMemories.push(text);
}

describe('kill -9 of the daemon', () => {
  it(
    `mid-sync, ${RUNS} runs: fsck clean, nothing lost, the next sync completes`,
    async () => {
      const random = seededRandom('kill-sync');
      let peerEntries = 0;
      const addPeerEntries = async (run: number) => {
        for (let j = 0; j < ENTRIES_PER_RUN; j++)
          await peer.remember({ type: 'observation', content: `peer ${run}.${j}`, tags: ['peer'] });
        peerEntries += ENTRIES_PER_RUN;
      };
      // a whole sync of one run's entries, to place the kills in it
      await addPeerEntries(-1);
      const t0 = Date.now();
      const warm = await cli(['sync', peer.address, '--json']);
      expect(warm.exitCode, warm.stderr).toBe(0);
      const span = Date.now() - t0;
      let cut = 0;
      for (let i = 0; i < RUNS; i++) {
        await rememberOwn(`own sync-run ${i}`);
        await addPeerEntries(i);
        const s = spawnCli(['sync', peer.address, '--json', '--config-dir', home]);
        await sleep(Math.round(span * (0.1 + random())));
        await killDaemon();
        if ((await s.exited).code !== 0) cut++;
        await restartAndCheck(`sync kill ${i}`);
        const again = await cli(['sync', peer.address, '--json']);
        if (again.exitCode !== 0) {
          // what failed, in the daemon's own words: the CLI's typed error and the tail of the daemon's log
          const logTail = (await readFile(join(home, 'daemon.log'), 'utf8').catch(() => '')).slice(-6_000);
          process.stderr.write(`[kill] sync after kill ${i} failed: ${again.stdout}\n${logTail}\n`);
        }
        expect(again.exitCode, `${again.stdout}\n${again.stderr}`).toBe(0);
        const r = await cli(['recall', '--json', '--all', '--tag', 'peer', '--limit', '100000']);
        expect(r.json<unknown[]>(), `peer entries after sync kill ${i}`).toHaveLength(peerEntries);
        process.stderr.write(`[kill] sync run ${i + 1}/${RUNS} ok, ${cut} cut\n`);
      }
      console.log(
        `[reliability] kill -9 mid-sync: ${RUNS} runs (a sync of ${ENTRIES_PER_RUN} entries ~${span} ms), ` +
          `${cut} cut a running sync; losses 0, fsck clean, outbox intact, every next sync complete; ` +
          `the killed daemon's tor exited within ${torLingerMaxMs} ms`,
      );
    },
    300_000 + RUNS * 90_000,
  );

  // Run only when asked (MMOGIT_KILL_RUNS, `npm run reliability -- kill`): each kill cost 40–70 s at the default
  // inbound rate (RATE above makes it less). A full CI
  // run once failed the old fixed 180 s drain bound; what the drain is made of was measured since
  // (docs/reliability.md, "The receive drain, measured"): mostly the receiver's rate limit on the backlog the
  // senders queue, plus a reconnect of 1.5–10.6 s. The bound now follows the backlog.
  it.runIf(process.env.MMOGIT_KILL_RUNS !== undefined)(
    `mid-message-receive, ${RUNS} runs: every message sent is in the inbox exactly once`,
    async () => {
      const random = seededRandom('kill-receive');
      const drains: { backlog: number; firstDeliveryMs: number; drainMs: number; floorMs: number }[] = [];
      const sent = new Map<string, string>(); // id → status send() answered
      let inFlightAtKill = 0;
      for (let i = 0; i < RUNS; i++) {
        await rememberOwn(`own receive-run ${i}`);
        let stop = false;
        let inFlight = 0;
        // four senders at once, each sending until the kill
        const senders = Array.from({ length: 4 }, async (_, k) => {
          for (let n = 0; !stop; n++) {
            inFlight++;
            try {
              const r = await peer.send(onion, `run ${i} sender ${k} #${n}`, {
                timeoutMs: 20_000,
              });
              sent.set(r.id, r.status);
            } finally {
              inFlight--;
            }
          }
        });
        await sleep(Math.round(500 + 2_500 * random()));
        inFlightAtKill += inFlight;
        // a connection to the dead daemon that libp2p still counts as open would be reused by every dial
        const watch = watchStale(i);
        await killDaemon();
        stop = true;
        await Promise.all(senders);
        await restartAndCheck(`receive kill ${i}`);
        // the peer's outbox drains into the restarted daemon (retried now rather than at its backoff)
        const t0 = Date.now();
        // What bounds the drain: the receiver admits at most RATE.refillPerSecond messages a second per peer
        // after a burst of RATE.capacity, and the four senders queue hundreds before the kill, so a backlog B
        // needs at least (B − capacity) / refill s however fast the route comes back. The bound is twice
        // that floor plus 60 s for the reconnect; the first delivery shows the reconnect alone.
        const backlog = peer.outbox().length;
        const floorMs = Math.max(0, backlog - RATE.capacity) * (1000 / RATE.refillPerSecond);
        let firstDeliveryMs: number | undefined;
        // why attempts failed, counted from the queued messages' last errors (ids, onions, numbers cut out)
        const failures = new Map<string, number>();
        await until(
          async () => {
            const pending = peer.outbox();
            if (firstDeliveryMs === undefined && pending.length < backlog) firstDeliveryMs = Date.now() - t0;
            for (const m of pending) {
              if (m.lastError) {
                const why = m.lastError.message
                  .replace(/[a-z2-7]{56}(\.onion)?/g, '<onion>')
                  .replace(/[0-9a-f]{32}/g, '<id>')
                  .replace(/\d+/g, 'N')
                  .slice(0, 100);
                const key = `${m.lastError.code}: ${why}`;
                failures.set(key, (failures.get(key) ?? 0) + 1);
              }
              await peer.retryQueued(m.id).catch(() => {});
            }
            return peer.outbox().length === 0;
          },
          60_000 + 2 * floorMs,
          `the peer's outbox (${backlog} queued) to drain after kill ${i}`,
          1_000,
        ).catch(async (e: unknown) => {
          process.stderr.write(
            `[kill] outbox not drained after kill ${i} (daemon start ${starts}${torLogDir ? `, tor logs in ${torLogDir}` : ''}); failed attempts: ${JSON.stringify([...failures])}\n${await diagnose()}\n`,
          );
          throw e;
        });
        const drainMs = Date.now() - t0;
        drains.push({ backlog, firstDeliveryMs: firstDeliveryMs ?? drainMs, drainMs, floorMs });
        process.stderr.write(
          `[kill] receive run ${i + 1}/${RUNS}: ${backlog} queued; first delivered after ${firstDeliveryMs ?? drainMs} ms, ` +
            `all after ${drainMs} ms (rate-limit floor ${floorMs} ms); failed attempts: ${JSON.stringify([...failures])}\n`,
        );
        watch.stop();
      }
      const inbox = await cli(['inbox', '--json']);
      const ids = inbox.json<{ id: string; from: string }[]>().filter((m) => m.from === peer.address);
      const counts = new Map<string, number>();
      for (const m of ids) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
      const lost = [...sent.keys()].filter((id) => !counts.has(id));
      const twice = [...counts].filter(([, c]) => c > 1);
      const acked = [...sent.values()].filter((s) => s === 'delivered').length;
      console.log(
        `[reliability] kill -9 mid-receive: ${RUNS} runs, ${sent.size} messages (${acked} acked at once, ` +
          `${sent.size - acked} queued and delivered after the restart), ${inFlightAtKill} in flight at the kills; ` +
          `losses ${lost.length}, duplicates ${twice.length}, fsck clean, outbox intact; ` +
          `the killed daemon's tor exited within ${torLingerMaxMs} ms; drains (backlog, first delivery ms, all ms, floor ms): ` +
          JSON.stringify(drains.map((d) => [d.backlog, d.firstDeliveryMs, d.drainMs, d.floorMs])),
      );
      expect(lost).toEqual([]);
      expect(twice).toEqual([]);
      expect([...sent.values()].filter((s) => s === 'failed')).toEqual([]);
    },
    300_000 + RUNS * 240_000,
  );
});
