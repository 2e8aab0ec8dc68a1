// Load on the private Tor network: AGENTS in-process agents, each with its own tor and onion, each sending
// MESSAGES messages round-robin to the others (4 in flight per sender). Every message must arrive exactly once
// (one `message` event and one inbox entry per id, outboxes empty); the figures are the delivery time (send
// called → the receiver's `message` event) p50/p99 and the process's RSS after a warm-up and after the run.
// All agents share this one process, so RSS is theirs together. Size: MMOGIT_LOAD_AGENTS (default 3),
// MMOGIT_LOAD_MESSAGES (default 20); `npm run reliability -- load` runs the long one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { testNetwork } from '../helpers/tor.js';
import { until } from './_helpers.js';

const AGENTS = Math.max(2, Number(process.env.MMOGIT_LOAD_AGENTS ?? 3) | 0);
const MESSAGES = Math.max(1, Number(process.env.MMOGIT_LOAD_MESSAGES ?? 20) | 0);
const IN_FLIGHT = 4;

let root: string;
const agents: Agent[] = [];
const received = new Map<string, number>(); // id → time of its message event
const counts = new Map<string, number>();

beforeAll(
  async () => {
    const net = await testNetwork();
    root = await mkdtemp(join(tmpdir(), 'mmogit-load-'));
    for (let i = 0; i < AGENTS; i++)
      agents.push((await Agent.init({ configDir: join(root, `a${i}`) })).agent);
    // started a few at a time: every tor bootstraps on the shared cores
    for (let i = 0; i < AGENTS; i += 4)
      await Promise.all(
        agents
          .slice(i, i + 4)
          .map((a) => a.start({ network: net.dir, timeoutMs: 180_000, selfProbe: false })),
      );
    for (const a of agents)
      a.on('message', (m) => {
        counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
        if (!received.has(m.id)) received.set(m.id, performance.now());
      });
  },
  120_000 + AGENTS * 60_000,
);

afterAll(async () => {
  for (const a of agents) await a.close().catch(() => {});
  await rm(root, { recursive: true, force: true });
}, 120_000);

const rssMiB = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

describe(`load: ${AGENTS} agents × ${MESSAGES} messages`, () => {
  it(
    'every message delivered exactly once; delivery p50/p99; RSS before and after',
    async () => {
      // warm-up: one message each way around the ring, so sessions exist and RSS is past start-up
      await Promise.all(agents.map((a, i) => a.send(agents[(i + 1) % AGENTS]!.address, 'warm-up')));
      await until(() => received.size >= AGENTS, 120_000, 'the warm-up messages');
      global.gc?.();
      const rssBefore = rssMiB();
      const sentAt = new Map<string, number>();
      const statuses = new Map<string, string>();
      const t0 = performance.now();
      // RSS at each quarter of the sends (no gc forced), so growth over the run shows as a trend, not two points
      const quarters: number[] = [];
      let sent = 0;
      await Promise.all(
        agents.map(async (a, i) => {
          let next = 0;
          await Promise.all(
            Array.from({ length: IN_FLIGHT }, async () => {
              while (next < MESSAGES) {
                const n = next++;
                const to = agents[(i + 1 + (n % (AGENTS - 1))) % AGENTS]!;
                const start = performance.now();
                const r = await a.send(to.address, `load ${i}.${n}`, { timeoutMs: 60_000 });
                sentAt.set(r.id, start);
                statuses.set(r.id, r.status);
                if (++sent % Math.max(1, Math.floor((AGENTS * MESSAGES) / 4)) === 0) {
                  quarters.push(rssMiB());
                  // progress of a long run (stderr, as the CLI's): how far, how fast
                  const s = (performance.now() - t0) / 1000;
                  process.stderr.write(
                    `[load] ${sent} sent in ${s.toFixed(0)} s, RSS ${quarters.at(-1)} MiB\n`,
                  );
                }
              }
            }),
          );
        }),
      );
      const total = AGENTS * MESSAGES;
      await until(
        async () => {
          for (const a of agents) for (const m of a.outbox()) await a.retryQueued(m.id).catch(() => {});
          return [...sentAt.keys()].every((id) => received.has(id));
        },
        300_000,
        'every message to arrive',
        1_000,
      );
      const wallS = (performance.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 2_000)); // a late duplicate would show now
      global.gc?.();
      const rssAfter = rssMiB();
      const times = [...sentAt].map(([id, at]) => received.get(id)! - at);
      const inboxIds = (await Promise.all(agents.map((a) => a.inbox()))).flat().map((m) => m.id);
      const inInbox = new Map<string, number>();
      for (const id of inboxIds) inInbox.set(id, (inInbox.get(id) ?? 0) + 1);
      const dupEvents = [...sentAt.keys()].filter((id) => (counts.get(id) ?? 0) !== 1);
      const dupInbox = [...sentAt.keys()].filter((id) => inInbox.get(id) !== 1);
      const queued = [...statuses.values()].filter((s) => s === 'queued').length;
      console.log(
        `[reliability] load ${AGENTS} agents × ${MESSAGES} messages = ${total} in ${wallS.toFixed(1)} s ` +
          `(${(total / wallS).toFixed(1)} msg/s, ${queued} queued first): delivery p50 ${pct(times, 50).toFixed(0)} ms, ` +
          `p99 ${pct(times, 99).toFixed(0)} ms, max ${pct(times, 100).toFixed(0)} ms; exactly once: events ` +
          `${dupEvents.length} off, inbox ${dupInbox.length} off; RSS ${rssBefore} → ${rssAfter} MiB ` +
          `(at each quarter of the sends: ${quarters.join(', ')} MiB)`,
      );
      expect(sentAt.size).toBe(total);
      expect(dupEvents).toEqual([]);
      expect(dupInbox).toEqual([]);
      for (const a of agents) expect(a.outbox()).toEqual([]);
    },
    600_000 + AGENTS * MESSAGES * 2_000,
  );
});
