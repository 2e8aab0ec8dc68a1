/**
 * `npm run demo`: mmogit's main job end to end, offline, on the built-in private Tor network.
 *
 * 1. brings up a private Tor network on loopback (directory authorities from tor-gencert);
 * 2. starts three agents (alice, bob, carol), each with its own tor and onion service;
 * 3. they advertise `memory_sync` in the Kademlia DHT and carol discovers the others;
 * 4. they exchange post-quantum-protected, signed messages;
 * 5. each remembers something, and carol syncs memory with alice and bob;
 * 6. prints a summary (or one JSON document with `--json`) and stops everything it started.
 *
 * Progress goes to stderr. Exit code 0 when every step worked, 1 otherwise (with one clear line).
 */
import '../src/_polyfill.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../src/_async.js';
import { Agent } from '../src/agent/agent.js';
import type { DiscoveredAgent } from '../src/agent/runtime.js';
import { MmogitError } from '../src/errors.js';
import { testnetDown, testnetUp } from '../src/tor/testnet.js';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from '../src/transport/addr.js';

const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');
const DEMO_TIMEOUT_MS = 8 * 60_000;

const t0 = Date.now();
const say = (line: string) =>
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
const short = (onion: string) => `${onion.slice(0, 10)}…onion`;

interface Summary {
  ok: boolean;
  network: { dir: string; authorities: number; upSeconds: number };
  agents: { name: string; onion: string; startSeconds: number }[];
  discovery: { service: string; by: string; found: string[]; seconds: number };
  messages: { from: string; to: string; status: string; roundTripMs: number; suite: string }[];
  sync: { who: string; peer: string; received: number; sent: number; ms: number }[];
  recall: { who: string; memories: number; fromPeers: number; allVerified: boolean };
  totalSeconds: number;
  error?: { code: string; message: string };
}

async function main(): Promise<Summary> {
  const root = await mkdtemp(join(tmpdir(), 'mmogit-demo-'));
  const netDir = join(root, 'network');
  const agents: Agent[] = [];
  const abort = new AbortController();
  const timer = setTimeout(
    () =>
      abort.abort(new MmogitError('ERR_TIMEOUT', `demo did not finish in ${DEMO_TIMEOUT_MS / 60_000} min`)),
    DEMO_TIMEOUT_MS,
  );
  const onSignal = () => abort.abort(new MmogitError('ERR_ABORTED', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const summary: Summary = {
    ok: false,
    network: { dir: netDir, authorities: 0, upSeconds: 0 },
    agents: [],
    discovery: { service: 'memory_sync', by: 'carol', found: [], seconds: 0 },
    messages: [],
    sync: [],
    recall: { who: 'carol', memories: 0, fromPeers: 0, allVerified: false },
    totalSeconds: 0,
  };
  try {
    // 1. The private Tor network.
    say('starting a private Tor network on 127.0.0.1 (4 directory authorities)…');
    let lastPct = -1;
    const net = await testnetUp({
      dir: netDir,
      ownerPid: process.pid,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.phase === 'bootstrap' && p.progress >= lastPct + 25) {
          lastPct = p.progress;
          say(`  network bootstrap ${p.progress}%`);
        }
      },
    });
    summary.network.authorities = net.authorities.length;
    summary.network.upSeconds = (Date.now() - t0) / 1000;
    say(`network up in ${summary.network.upSeconds.toFixed(1)} s`);

    // 2. Three agents with their own tor and onion. Alice is the DHT bootstrap for the others.
    const names = ['alice', 'bob', 'carol'];
    let bootstrap: string[] = [];
    for (const name of names) {
      const started = Date.now();
      const { agent } = await Agent.init({ configDir: join(root, name) });
      agents.push(agent);
      say(`${name}: starting tor and publishing ${short(agent.address)}…`);
      await agent.start({
        network: netDir,
        bootstrap,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.phase === 'onion' && p.state === 'published') say(`  ${name}: onion published (${p.ms} ms)`);
        },
      });
      summary.agents.push({ name, onion: agent.address, startSeconds: (Date.now() - started) / 1000 });
      if (bootstrap.length === 0) {
        bootstrap = [
          onionMultiaddr(
            agent.address,
            DEFAULT_ONION_VIRTUAL_PORT,
            peerIdFromOnion(agent.address).toString(),
          ).toString(),
        ];
      }
    }
    const [alice, bob, carol] = agents as [Agent, Agent, Agent];

    // 3. Advertise and discover memory_sync through the DHT.
    say('alice and bob advertise memory_sync in the DHT…');
    await alice.advertise(['memory_sync'], { signal: abort.signal });
    await bob.advertise(['memory_sync'], { signal: abort.signal });
    say('carol discovers memory_sync…');
    const discoverStart = Date.now();
    const found: DiscoveredAgent[] = [];
    for (let round = 0; round < 5 && found.length < 2; round++) {
      for await (const ad of carol.discover('memory_sync', {
        signal: abort.signal,
        timeoutMs: 20_000,
        limit: 10,
      })) {
        if (!found.some((f) => f.onion === ad.onion)) {
          found.push(ad);
          say(`  found ${short(ad.onion)} offering ${ad.services.join(',')} (signature verified)`);
        }
      }
    }
    summary.discovery.found = found.map((f) => f.onion);
    summary.discovery.seconds = (Date.now() - discoverStart) / 1000;
    if (found.length === 0)
      throw new MmogitError('ERR_NOT_FOUND', 'carol found no agent offering memory_sync');

    // 4. Post-quantum-protected messages.
    const received = new Promise<void>((resolve) => {
      let n = 0;
      const count = () => {
        n++;
        if (n >= 2) resolve();
      };
      bob.on('message', count);
      carol.on('message', count);
    });
    for (const [from, to, fromName, toName, text] of [
      [alice, bob, 'alice', 'bob', 'hello bob — this travelled through two onion services'],
      [bob, carol, 'bob', 'carol', 'hi carol, ML-KEM-768 + X25519 protect this one'],
    ] as const) {
      const ping = await from.connect(to.address, { signal: abort.signal });
      const started = Date.now();
      const r = await from.send(to.address, text, { signal: abort.signal });
      summary.messages.push({
        from: fromName,
        to: toName,
        status: r.status,
        roundTripMs: Date.now() - started,
        suite: ping.suite,
      });
      say(
        `${fromName} → ${toName}: ${r.status} in ${Date.now() - started} ms over ${ping.transport} (${ping.suite})`,
      );
    }
    await Promise.race([received, sleep(30_000)]);

    // 5. Memories and sync.
    await alice.remember({
      type: 'learning',
      content: 'onion services need a descriptor upload before dialing',
      tags: ['tor'],
    });
    await bob.remember({
      type: 'observation',
      content: 'the DHT found two memory_sync providers',
      tags: ['dht'],
    });
    await carol.remember({
      type: 'reflection',
      content: 'post-quantum channels cost a few ms',
      tags: ['pqc'],
    });
    for (const [peer, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      const r = await carol.sync(peer.address, { signal: abort.signal });
      summary.sync.push({ who: 'carol', peer: name, received: r.received, sent: r.sent, ms: r.ms });
      say(`carol ⇄ ${name}: received ${r.received}, sent ${r.sent} entries in ${r.ms} ms`);
    }
    const memories = await carol.recall({ kind: 'memory' });
    summary.recall = {
      who: 'carol',
      memories: memories.length,
      fromPeers: memories.filter((m) => m.author !== carol.address).length,
      allVerified: memories.every((m) => m.verified),
    };
    say(
      `carol recalls ${memories.length} memories, ${summary.recall.fromPeers} from peers, all verified: ${summary.recall.allVerified}`,
    );
    summary.ok =
      found.length > 0 &&
      summary.messages.every((m) => m.status === 'delivered') &&
      summary.recall.fromPeers >= 2 &&
      summary.recall.allVerified;
    return summary;
  } finally {
    clearTimeout(timer);
    say('stopping agents and the network…');
    for (const a of agents) await a.close().catch(() => {});
    await testnetDown({ dir: netDir }).catch(() => {});
    if (!keep) await rm(root, { recursive: true, force: true }).catch(() => {});
    summary.totalSeconds = (Date.now() - t0) / 1000;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function render(s: Summary): string {
  const lines = [
    '',
    `mmogit demo — ${s.ok ? 'all steps worked' : 'SOME STEPS FAILED'} (${s.totalSeconds.toFixed(1)} s)`,
    '',
    `private Tor network: ${s.network.authorities} authorities, up in ${s.network.upSeconds.toFixed(1)} s`,
    'agents:',
    ...s.agents.map((a) => `  ${a.name.padEnd(6)} ${a.onion}  (started in ${a.startSeconds.toFixed(1)} s)`),
    `discovery: carol found ${s.discovery.found.length} agent(s) offering memory_sync in ${s.discovery.seconds.toFixed(1)} s`,
    'messages (signed, hybrid post-quantum channel, over tor):',
    ...s.messages.map((m) => `  ${m.from} → ${m.to}: ${m.status} in ${m.roundTripMs} ms (${m.suite})`),
    'memory sync:',
    ...s.sync.map((x) => `  ${x.who} ⇄ ${x.peer}: received ${x.received}, sent ${x.sent} (${x.ms} ms)`),
    `carol now recalls ${s.recall.memories} memories, ${s.recall.fromPeers} written by peers, all verified: ${s.recall.allVerified}`,
    '',
  ];
  return lines.join('\n');
}

try {
  const summary = await main();
  process.stdout.write(json ? `${JSON.stringify(summary)}\n` : render(summary));
  process.exitCode = summary.ok ? 0 : 1;
} catch (e) {
  const err =
    e instanceof MmogitError
      ? e
      : new MmogitError('ERR_INTERNAL', e instanceof Error ? e.message : String(e));
  process.stderr.write(`mmogit demo: ${err.message} [${err.code}]\n`);
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: err.toJSON() })}\n`);
  process.exitCode = 1;
}

// libp2p may keep timers alive briefly after stop; never let the demo hang on them.
setTimeout(() => process.exit(), 3_000).unref();
