// The sustained connection flood of exhaustion.test.ts, through the private Tor network: attackers open onion
// streams to the victim's onion through their tor's SOCKS port (on circuits of their own) and re-open each one
// the victim drops, while a genuine peer on the same tor dials the victim over and over. Run only when asked
// (MMOGIT_EXHAUSTION_TOR=1; MMOGIT_EXHAUSTION_CONNECTIONS sets the attackers, default 300): docs/reliability.md.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { socksConnect } from '../../src/tor/socks.js';
import { MAX_PENDING_INBOUND } from '../../src/transport/_inbound-admission.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';
import { startTestTor } from '../helpers/tor.js';

const RUN = process.env.MMOGIT_EXHAUSTION_TOR === '1';
const SIZE = Number(process.env.MMOGIT_EXHAUSTION_CONNECTIONS);
const HOLD = SIZE > 0 ? SIZE : 300;
const PROTOCOL = '/mmogit-test/exhaustion/1.0.0';
const VPORT = 4001;
const REOPEN_MS = 100;
/** Through tor a genuine connect + message takes a few round trips; the bound leaves room for the load. */
const GENUINE_BOUND_MS = 30_000;
const MSS = Buffer.from('\x13/multistream/1.0.0\n');

let tmp = '';
const tors: TorHandle[] = [];
const nodes: AgentNode[] = [];
const sockets = new Set<net.Socket>();
const timers: NodeJS.Timeout[] = [];

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  for (const n of nodes) await n.stop().catch(() => {});
  for (const t of tors) await t.stop().catch(() => {});
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!RUN)(`exhaustion through tor: ${HOLD} attackers re-opening dropped onion streams`, () => {
  it('a genuine peer still connects and delivers within the bound', async () => {
    tmp = await mkdtemp(join(tmpdir(), 'mmogit-exhaustion-tor-'));
    const [torA, torB] = await Promise.all([
      startTestTor(tmp, { name: 'a', restart: false }),
      startTestTor(tmp, { name: 'b', restart: false }),
    ]);
    tors.push(torA, torB);
    const vkey = AgentKey.random();
    let evictions = 0;
    const victim = await createAgentNode({
      key: vkey,
      socks: { host: torB.socksHost, port: torB.socksPort },
      onion: { serviceId: vkey.serviceId, virtualPort: VPORT },
      inboundAdmission: { onEvict: () => evictions++ },
    });
    nodes.push(victim);
    await publishOnion(torB, vkey, { targetPort: victim.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
    const got: string[] = [];
    await victim.handle(PROTOCOL, async (stream) => {
      for await (const chunk of stream) got.push(Buffer.from(chunk.subarray()).toString());
    });
    const genuine = await createAgentNode({
      key: AgentKey.random(),
      socks: { host: torA.socksHost, port: torA.socksPort },
      torDialAttempts: 6,
    });
    nodes.push(genuine);
    const send = async (text: string): Promise<number> => {
      await genuine.libp2p.hangUp(victim.peerId);
      const at = Date.now();
      const stream = await genuine.dialProtocol(vkey.onion, PROTOCOL, { timeoutMs: GENUINE_BOUND_MS });
      stream.send(new TextEncoder().encode(text));
      await stream.close();
      const deadline = Date.now() + GENUINE_BOUND_MS;
      while (!got.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got).toContain(text);
      return Date.now() - at;
    };
    const normalMs = await send('baseline'); // also warms the genuine peer's circuit's descriptor fetch
    const normal2Ms = await send('baseline 2');

    let stopping = false;
    let opened = 0;
    let open = 0;
    let failedOpens = 0;
    // Attackers' streams ride circuits of their own (one SOCKS isolation key per 50), not the genuine peer's.
    const hold = async (i: number): Promise<void> => {
      if (stopping) return;
      let s: net.Socket;
      try {
        s = await socksConnect(
          {
            socksHost: torA.socksHost,
            socksPort: torA.socksPort,
            host: `${vkey.serviceId}.onion`,
            port: VPORT,
            isolationKey: `attacker-${Math.floor(i / 50)}`,
          },
          { timeoutMs: 60_000 },
        );
      } catch {
        failedOpens++;
        if (!stopping) setTimeout(() => void hold(i), 1_000);
        return;
      }
      opened++;
      open++;
      sockets.add(s);
      s.on('error', () => {});
      const kind = i % 4;
      let slow: NodeJS.Timeout | undefined;
      if (kind === 1) s.write(MSS.subarray(0, 7));
      if (kind === 2) {
        let at = 0;
        slow = setInterval(() => {
          if (at < MSS.length && !s.destroyed) s.write(MSS.subarray(at, ++at));
        }, 500);
        timers.push(slow);
      }
      if (kind === 3) s.write(Buffer.concat([MSS, Buffer.from('\x07/noise\n'), randomBytes(2000)]));
      s.on('close', () => {
        clearInterval(slow);
        sockets.delete(s);
        open--;
        if (!stopping) setTimeout(() => void hold(i), REOPEN_MS);
      });
    };
    const opening = Array.from({ length: HOLD }, (_, i) => hold(i));
    await Promise.all(opening);
    await new Promise((r) => setTimeout(r, 2_000));
    const openAtStart = open;

    const times: number[] = [];
    const floodStart = Date.now();
    const openedBefore = opened;
    const until = Date.now() + 30_000;
    for (let i = 0; Date.now() < until; i++) {
      times.push(await send(`genuine ${i}`));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    stopping = true;
    const rate = (opened - openedBefore) / ((Date.now() - floodStart) / 1000);
    const sorted = [...times].sort((a, b) => a - b);
    process.stderr.write(
      `[exhaustion-tor] ${HOLD} attackers (${openAtStart} streams open 2 s after they all connected, cap ${MAX_PENDING_INBOUND}; ` +
        `${opened} opened in all, ${failedOpens} SOCKS failures, ${evictions} dropped by the victim, ${rate.toFixed(0)} new streams/s); ` +
        `genuine connect + message: ${times.length} tries, median ${sorted[sorted.length >> 1]} ms, max ${sorted.at(-1)} ms ` +
        `(without the attack: ${normalMs} ms cold, ${normal2Ms} ms warm)\n`,
    );
    for (const t of times) expect(t).toBeLessThan(GENUINE_BOUND_MS);
    expect(times.length).toBeGreaterThanOrEqual(3);
  }, 400_000);
});
