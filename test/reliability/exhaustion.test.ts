// Resource exhaustion from peers (docs/reliability.md "Resource exhaustion from peers"), on loopback against the
// agent's onion listener (the local port tor forwards inbound onion streams to): idle connections, half-open
// handshakes, slow senders, length prefixes claiming gigabytes and handshake floods at once. The agent's RSS stays
// bounded, every attacking connection is closed by the inbound deadlines (no handshake started in 5 s, no
// upgrade in 15 s),
// and a genuine peer's message arrives during the attack, also while attackers re-open every connection the
// agent drops and so keep more connections pending than it admits (src/transport/_inbound-admission.ts).
// MMOGIT_EXHAUSTION_CONNECTIONS=1000 runs the full size (default 200; the sustained flood: 400).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import {
  type EvictReason,
  INBOUND_HANDSHAKE_START_TIMEOUT_MS,
  INBOUND_UPGRADE_TIMEOUT_MS,
  MAX_PENDING_INBOUND,
} from '../../src/transport/_inbound-admission.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';

const SIZE = Number(process.env.MMOGIT_EXHAUSTION_CONNECTIONS);
const N = SIZE > 0 ? SIZE : 200;
/** Attackers of the sustained flood: more than the agent admits pending (and than libp2p's old cap, 256). */
const HOLD = SIZE > 0 ? SIZE : 400;
const PROTOCOL = '/mmogit-test/exhaustion/1.0.0';
/**
 * A genuine peer's connect-and-deliver bound during the attacks: its normal time on loopback is < 1 s; the rest
 * is room for a loaded CI machine (attackers, agent and peer share its cores). The old code failed by refusal.
 */
const GENUINE_BOUND_MS = 10_000;
/** How soon a sustained-flood attacker re-opens a connection the agent dropped. */
const REOPEN_MS = 100;
const nodes: AgentNode[] = [];
const sockets = new Set<net.Socket>();
const timers: NodeJS.Timeout[] = [];

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  for (const n of nodes) await n.stop().catch(() => {});
});

const mib = () => process.memoryUsage().rss / 2 ** 20;
const MSS = Buffer.from('\x13/multistream/1.0.0\n');

/** One attacking connection of `kind`; resolves when connected. Calls `onClose` when it closes. */
function attack(port: number, kind: number, onClose: () => void): Promise<net.Socket> {
  return new Promise((resolve) => {
    let slow: NodeJS.Timeout | undefined;
    const s = net.connect(port, '127.0.0.1', () => {
      if (kind === 1) s.write(MSS.subarray(0, 7)); // half-open: a header cut short
      if (kind === 2) {
        // slow sender: one byte of a valid header every 500 ms
        let at = 0;
        slow = setInterval(() => {
          if (at < MSS.length && !s.destroyed) s.write(MSS.subarray(at, ++at));
        }, 500);
        timers.push(slow);
      }
      if (kind === 3) s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])); // a varint prefix claiming 4 GiB
      if (kind === 4) s.write(Buffer.concat([MSS, Buffer.from('\x07/noise\n'), randomBytes(2000)])); // handshake flood
      resolve(s);
    });
    s.on('error', () => {});
    // Read (and drop) what the agent sends: a socket that never reads keeps a graceful close (FIN) queued behind
    // unread bytes and never emits 'close', so an agent that ended such a connection after its multistream answer
    // looked like one that kept it open (CI: 199 of 200 "closed").
    s.resume();
    s.on('close', () => {
      clearInterval(slow);
      onClose();
    });
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
}

/** The victim (tor-only: its onion listener only) with a test protocol, a genuine peer, and its `send`. */
async function victimAndPeer(onEvict?: (reason: EvictReason) => void) {
  const victim = await createAgentNode({
    key: AgentKey.random(),
    policy: 'tor-only',
    ...(onEvict ? { inboundAdmission: { onEvict } } : {}),
  });
  nodes.push(victim);
  const got: string[] = [];
  await victim.handle(PROTOCOL, async (stream) => {
    for await (const chunk of stream) got.push(Buffer.from(chunk.subarray()).toString());
  });
  const genuine = await createAgentNode({ key: AgentKey.random(), policy: 'direct-only' });
  nodes.push(genuine);
  const target = multiaddr(`/ip4/127.0.0.1/tcp/${victim.listenPort}/p2p/${victim.peerId.toString()}`);
  /** A new connection (the last one hung up), one stream, one message; the ms until the victim has it. */
  const send = async (text: string): Promise<number> => {
    await genuine.libp2p.hangUp(victim.peerId);
    const at = Date.now();
    const stream = await genuine.libp2p.dialProtocol(target, PROTOCOL, {
      signal: AbortSignal.timeout(20_000),
    });
    stream.send(new TextEncoder().encode(text));
    await stream.close();
    const deadline = Date.now() + 20_000;
    while (!got.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got).toContain(text);
    return Date.now() - at;
  };
  return { victim, send };
}

describe(`exhaustion: ${N} hostile connections to the onion listener`, () => {
  it('RSS stays bounded, attackers are closed by the deadline, a genuine message still arrives', async () => {
    const { victim, send } = await victimAndPeer();
    const port = victim.listenPort as number;
    // The normal time first: the same dial and message with no attack.
    const normalMs = await send('baseline');

    global.gc?.();
    const before = mib();
    const started = Date.now();
    const closed: number[] = [];
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, N - i) }, (_, j) =>
          attack(port, (i + j) % 5, () => closed.push(Date.now() - started)),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const during = mib();

    // A genuine peer during the attack: dial, negotiate, send one message, at any N (above the pending cap
    // its connection evicts an attacker's instead of being refused).
    const deliveredMs = await send('genuine hello');
    expect(deliveredMs).toBeLessThan(GENUINE_BOUND_MS);

    // Every attacking connection is closed by the upgrade deadline (plus slack for a loaded machine).
    const closeDeadline = Date.now() + INBOUND_UPGRADE_TIMEOUT_MS + 15_000;
    while (closed.length < N && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 250));
    global.gc?.();
    const after = mib();
    const lastClose = Math.max(...closed);
    process.stderr.write(
      `[exhaustion] ${N} connections: RSS before ${before.toFixed(0)} MiB, during ${during.toFixed(0)} MiB, after ${after.toFixed(0)} MiB; ` +
        `genuine message: ${deliveredMs} ms during the attack (${normalMs} ms without); ${closed.length}/${N} closed by the agent, last after ${(lastClose / 1000).toFixed(1)} s\n`,
    );
    expect(closed.length).toBe(N);
    expect(lastClose).toBeLessThan(INBOUND_UPGRADE_TIMEOUT_MS + 15_000);
    // Bounded: what N pending upgrades may cost is far below a byte per claimed length (4 GiB each).
    expect(during - before).toBeLessThan(256);
  }, 120_000);
});

describe(`exhaustion: ${HOLD} attackers re-opening every connection the agent drops`, () => {
  // Regression: libp2p refused every inbound connection above its pending cap (256) until one timed out (30 s),
  // so a few hundred idle connections locked genuine peers out (docs/threat-model.md). Now a newcomer evicts
  // the oldest pending connection and a connection that has not started a handshake is dropped at 5 s: a
  // genuine peer is evicted only if MAX_PENDING_INBOUND connections arrive during its own upgrade.
  it('keeps more connections pending than the agent admits, and a genuine peer still connects within the bound', async () => {
    let evictions = 0;
    let overCap = 0;
    const { victim, send } = await victimAndPeer((reason) => {
      evictions++;
      if (reason === 'evicted') overCap++;
    });
    const port = victim.listenPort as number;
    const normalMs = await send('baseline');

    let stopping = false;
    let opened = 0;
    let open = 0;
    // Each attacker re-opens its connection REOPEN_MS after the agent dropped it (over tor a re-open costs the
    // attacker a circuit round trip; a tight loop here would measure this process's event loop, which attacker
    // and victim share, rather than the admission rule).
    const hold = async (kind: number): Promise<void> => {
      if (stopping) return;
      opened++;
      open++;
      await attack(port, kind, () => {
        open--;
        if (!stopping) setTimeout(() => void hold(kind), REOPEN_MS);
      });
    };
    // idle, half-open and slow (0-2) until the 5 s deadline, handshake floods (4) until 15 s or evicted; not 3,
    // the 4 GiB prefix, which multistream-select refuses at once
    const kinds = [0, 1, 2, 4];
    for (let i = 0; i < HOLD; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, HOLD - i) }, (_, j) => hold(kinds[(i + j) % 4]!)));
    }
    await new Promise((r) => setTimeout(r, 1_000));
    // How many are open at this instant is a race between the attackers' re-opens and the agent's drops (on a
    // loaded Node 24 run it came out below the cap), so it is only reported; that the attack went past the cap
    // is checked below by the agent's own count of connections it evicted to admit a newer one.
    const openAtStart = open;

    // Across the deadlines: idle sockets dropped at 5 s, the rest at 15 s, all re-opened at once.
    const times: number[] = [];
    const floodStart = Date.now();
    const openedBefore = opened;
    const until = Date.now() + INBOUND_UPGRADE_TIMEOUT_MS + INBOUND_HANDSHAKE_START_TIMEOUT_MS;
    for (let i = 0; Date.now() < until; i++) {
      times.push(await send(`genuine ${i}`));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    stopping = true;
    const rate = (opened - openedBefore) / ((Date.now() - floodStart) / 1000);
    process.stderr.write(
      `[exhaustion] sustained flood: ${HOLD} attackers (${openAtStart} connections open after 1 s, ${opened} opened in all, ` +
        `${evictions} dropped by the agent before their upgrade (${overCap} evicted over the cap), ${rate.toFixed(0)} new connections/s); genuine connect + message: ${times.length} tries, ` +
        `max ${Math.max(...times)} ms, median ${times.sort((a, b) => a - b)[times.length >> 1]} ms (${normalMs} ms without)\n`,
    );
    for (const t of times) expect(t).toBeLessThan(GENUINE_BOUND_MS);
    expect(times.length).toBeGreaterThanOrEqual(5);
    expect(opened).toBeGreaterThan(HOLD); // the attackers did re-open what was dropped
    // HOLD never-upgrading connections against a cap of MAX_PENDING_INBOUND: at least the excess was evicted
    expect(overCap).toBeGreaterThanOrEqual(HOLD - MAX_PENDING_INBOUND);
  }, 120_000);
});
