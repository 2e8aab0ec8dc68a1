// Resource exhaustion from peers (docs/reliability.md "Resource exhaustion from peers"), on loopback against the
// agent's onion listener (the local port tor forwards inbound onion streams to): idle connections, half-open
// handshakes, slow senders, length prefixes claiming gigabytes and handshake floods at once. The agent's RSS stays
// bounded, every attacking connection is closed by the inbound upgrade deadline (30 s), and a genuine peer's
// message arrives during the attack. MMOGIT_EXHAUSTION_CONNECTIONS=1000 runs the full size (default 200).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';

const N =
  Number(process.env.MMOGIT_EXHAUSTION_CONNECTIONS) > 0
    ? Number(process.env.MMOGIT_EXHAUSTION_CONNECTIONS)
    : 200;
const PROTOCOL = '/mmogit-test/exhaustion/1.0.0';
const UPGRADE_DEADLINE_MS = 30_000; // src/transport/node.ts inboundUpgradeTimeout
const PENDING_CAP = 256; // src/transport/node.ts maxIncomingPendingConnections
const nodes: AgentNode[] = [];
const sockets: net.Socket[] = [];
const timers: NodeJS.Timeout[] = [];

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  for (const n of nodes) await n.stop().catch(() => {});
});

const mib = () => process.memoryUsage().rss / 2 ** 20;
const MSS = Buffer.from('\x13/multistream/1.0.0\n');

/** One attacking connection of `kind`; resolves when connected. Records when the agent closes it. */
function attack(port: number, kind: number, closed: number[], started: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (kind === 1) s.write(MSS.subarray(0, 7)); // half-open: a header cut short
      if (kind === 2) {
        // slow sender: one byte of a valid header every 500 ms
        let at = 0;
        const t = setInterval(() => {
          if (at < MSS.length && !s.destroyed) s.write(MSS.subarray(at, ++at));
        }, 500);
        timers.push(t);
      }
      if (kind === 3) s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])); // a varint prefix claiming 4 GiB
      if (kind === 4) s.write(Buffer.concat([MSS, Buffer.from('\x07/noise\n'), randomBytes(2000)])); // handshake flood
      resolve();
    });
    s.on('error', () => {});
    s.on('close', () => closed.push(Date.now() - started));
    sockets.push(s);
  });
}

describe(`exhaustion: ${N} hostile connections to the onion listener`, () => {
  it('RSS stays bounded, attackers are closed by the deadline, a genuine message still arrives', async () => {
    const victim = await createAgentNode({ key: AgentKey.random(), policy: 'tor-only' });
    nodes.push(victim);
    const got: string[] = [];
    await victim.handle(PROTOCOL, async (stream) => {
      for await (const chunk of stream) got.push(Buffer.from(chunk.subarray()).toString());
    });
    const genuine = await createAgentNode({ key: AgentKey.random(), policy: 'direct-only' });
    nodes.push(genuine);
    const target = multiaddr(`/ip4/127.0.0.1/tcp/${victim.listenPort}/p2p/${victim.peerId.toString()}`);

    // The normal time first: the same dial and message with no attack.
    const send = async (text: string): Promise<number> => {
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
    const normalMs = await send('baseline');
    await genuine.libp2p.hangUp(victim.peerId);

    global.gc?.();
    const before = mib();
    const started = Date.now();
    const closed: number[] = [];
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, N - i) }, (_, j) =>
          attack(victim.listenPort, (i + j) % 5, closed, started),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const during = mib();

    // A genuine peer during the attack: dial, negotiate, send one message.
    // Above libp2p's pending-upgrade cap (maxIncomingPendingConnections, 256) a new connection is reset until
    // the deadline frees a slot: an open finding (docs/threat-model.md), reported, not asserted, at that size.
    let deliveredMs: number | string;
    if (N <= PENDING_CAP) deliveredMs = await send('genuine hello');
    else deliveredMs = await send('genuine hello').catch((e: Error) => `refused (${e.message.slice(0, 60)})`);

    // Every attacking connection is closed by the upgrade deadline (plus slack for a loaded machine).
    const closeDeadline = Date.now() + UPGRADE_DEADLINE_MS + 15_000;
    while (closed.length < N && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 250));
    global.gc?.();
    const after = mib();
    const lastClose = Math.max(...closed);
    process.stderr.write(
      `[exhaustion] ${N} connections: RSS before ${before.toFixed(0)} MiB, during ${during.toFixed(0)} MiB, after ${after.toFixed(0)} MiB; ` +
        `genuine message: ${deliveredMs} ms during the attack (${normalMs} ms without); ${closed.length}/${N} closed by the agent, last after ${(lastClose / 1000).toFixed(1)} s\n`,
    );
    expect(closed.length).toBe(N);
    expect(lastClose).toBeLessThan(UPGRADE_DEADLINE_MS + 15_000);
    // Bounded: what N pending upgrades may cost is far below a byte per claimed length (4 GiB each).
    expect(during - before).toBeLessThan(256);
  }, 120_000);
});
