/**
 * Benchmarks of agent messaging over the private Tor network, each compared with a bare socket through the
 * same tors (an echo server behind an onion, reached through the client's SOCKS port):
 * - {@link benchMessageRoundTrip}: `Messenger.send()` until the verified ack (sign, PQ frame, tor, verify,
 *   receiver's O_DSYNC journal write, signed ack, verify; the sender's outbox write runs beside the attempt)
 *   vs a bare echo of as many bytes; both agents' batched git copies run in the background of this one
 *   process, so back-to-back sends also pay for that contention;
 * - {@link benchMessagePingRoundTrip}: a ping/pong on the warm messaging session (the protocol's transport
 *   cost: libp2p + yamux + PQ frames + JSON) vs the same bare echo.
 * Both use one warm session per peer pair, as agents do. The network is `MMOGIT_TEST_NETWORK` (a testnet dir)
 * when set, else a private one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/messaging.js`.
 * @module
 */
import '../src/_polyfill.js';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Messenger } from '../src/agent/messaging.js';
import { messageStoreFromMemory, messagingNodeFromAgentNode } from '../src/agent/messaging-adapters.js';
import { encodeFrame, signMessage } from '../src/agent/messaging-envelope.js';
import { AgentKey } from '../src/identity/keys.js';
import { MemoryStore } from '../src/memory/store.js';
import type { TorHandle } from '../src/tor/daemon.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { socksConnect } from '../src/tor/socks.js';
import type { TorNetworkInfo } from '../src/tor/testnet.js';
import { type AgentNode, createAgentNode } from '../src/transport/node.js';
import { type BenchResult, median, round as roundTo, twoTors } from './_shared.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/messaging.js';
/** The goal: a message round trip within 1.10× of a bare SOCKS echo through the same tor. */
export const MESSAGE_RTT_TARGET_RATIO = 1.1;
const VPORT = 4001;
const TEXT = 'benchmark message: the quick brown fox jumps over the lazy dog'.repeat(2);

const round = (x: number, d = 3) => roundTo(x, d);

/** Two agent tors on a private network, two messaging agents on them, and a bare echo onion. */
export interface MessagingBenchSetup {
  network: TorNetworkInfo;
  /** Median bare round trip (ms) of `bytes` through the same tors, measured on demand. */
  bareEchoRtt(bytes: number, rounds: number): Promise<number[]>;
  a: { key: AgentKey; messenger: Messenger };
  b: { key: AgentKey; messenger: Messenger };
  close(): Promise<void>;
}

/** Starts (or joins) the network, two agent tors, two agents with a warm session, and the echo onion. */
export async function messagingBenchSetup(): Promise<MessagingBenchSetup> {
  const { tmp, network, torA, torB, cleanups, close } = await twoTors('mmogit-bench-msg-');
  try {
    const agent = async (tor: TorHandle, name: string) => {
      const key = AgentKey.random();
      const node: AgentNode = await createAgentNode({
        key,
        socks: { host: tor.socksHost, port: tor.socksPort },
        onion: { serviceId: key.serviceId, virtualPort: VPORT },
      });
      const memory = await MemoryStore.open(join(tmp, name, 'memory'), key);
      const messenger = new Messenger({
        node: messagingNodeFromAgentNode(node),
        key,
        store: messageStoreFromMemory(memory, { journalPath: join(tmp, name, 'messages.journal') }),
        outboxDir: join(tmp, name, 'outbox'),
        limits: { rate: { capacity: 10_000, refillPerSecond: 10_000 } },
      });
      await messenger.start();
      cleanups.push(async () => {
        await messenger.stop();
        await node.stop();
        await memory.close();
      });
      await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
      return { key, messenger };
    };
    const [a, b] = await Promise.all([agent(torA, 'a'), agent(torB, 'b')]);

    // The bare reference: an echo server behind its own onion on B's tor, dialled through A's tor.
    const echo = net.createServer((s) => {
      s.setNoDelay(true);
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => echo.close(r)));
    const echoKey = AgentKey.random();
    await publishOnion(torB, echoKey, {
      targetPort: (echo.address() as net.AddressInfo).port,
      virtualPort: VPORT,
      timeoutMs: 60_000,
    });
    let sock: net.Socket | undefined;
    for (let i = 0; !sock; i++) {
      try {
        sock = await socksConnect(
          { socksPort: torA.socksPort, socksHost: torA.socksHost, host: echoKey.onion, port: VPORT },
          { timeoutMs: 30_000 },
        );
      } catch (e) {
        if (i >= 5) throw e; // the descriptor may need a moment after upload
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    const bare = sock;
    bare.setNoDelay(true);
    cleanups.push(async () => bare.destroy());

    const bareEchoRtt = async (bytes: number, rounds: number): Promise<number[]> => {
      const payload = Buffer.alloc(bytes, 0x61);
      const times: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          let got = 0;
          const onData = (d: Buffer) => {
            got += d.length;
            if (got >= bytes) {
              bare.off('data', onData);
              bare.off('error', reject);
              resolve();
            }
          };
          bare.on('data', onData);
          bare.once('error', reject);
          bare.write(payload);
        });
        times.push(performance.now() - t0);
      }
      return times;
    };

    // Warm both paths: circuits, the libp2p connection and the PQ session.
    for (let i = 0; i < 5; i++) await a.messenger.send(b.key.onion, 'warm-up', { timeoutMs: 90_000 });
    await bareEchoRtt(512, 20);
    return { network, bareEchoRtt, a, b, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Bytes of one message frame with {@link TEXT} (what the bare echo sends for a fair comparison). */
function frameBytes(from: AgentKey, to: string): number {
  const s = signMessage(from, to, TEXT);
  return encodeFrame({ t: 'msg', m: s.message, sig: s.sig }).length;
}

async function withSetup<T>(
  given: MessagingBenchSetup | undefined,
  fn: (s: MessagingBenchSetup) => Promise<T>,
) {
  const s = given ?? (await messagingBenchSetup());
  try {
    return await fn(s);
  } finally {
    if (!given) await s.close();
  }
}

/**
 * `rounds` timings (ms) of `measure` and as many bare echoes of `bytes`, interleaved in blocks of 10 so drift in
 * tor's load hits both alike.
 */
async function interleaved(
  s: MessagingBenchSetup,
  bytes: number,
  rounds: number,
  measure: () => Promise<number>,
): Promise<{ ours: number[]; bare: number[] }> {
  const ours: number[] = [];
  const bare: number[] = [];
  for (let block = 0; block < rounds / 10; block++) {
    bare.push(...(await s.bareEchoRtt(bytes, 10)));
    for (let i = 0; i < 10; i++) ours.push(await measure());
  }
  return { ours, bare };
}

/** The result row: median of `ours` against the median bare echo, with the ratio target. */
function vsBare(name: string, ours: number[], bare: number[], notes: string): BenchResult {
  const value = median(ours);
  const anchor = median(bare);
  return {
    name,
    value: round(value),
    unit: 'ms',
    anchor: round(anchor),
    ratio: round(value / anchor),
    target: MESSAGE_RTT_TARGET_RATIO,
    command: COMMAND,
    notes,
  };
}

/**
 * Median `send()` round trip (until the verified ack) on a warm session vs the median bare echo of a frame's
 * worth of bytes through the same tors. Interleaved in blocks so drift in tor's load hits both alike.
 */
export async function benchMessageRoundTrip(
  options: { rounds?: number; setup?: MessagingBenchSetup } = {},
): Promise<BenchResult> {
  const rounds = options.rounds ?? 60;
  return withSetup(options.setup, async (s) => {
    const bytes = frameBytes(s.a.key, s.b.key.onion);
    const { ours: sends, bare } = await interleaved(s, bytes, rounds, async () => {
      const t0 = performance.now();
      const r = await s.a.messenger.send(s.b.key.onion, TEXT, { timeoutMs: 30_000 });
      if (r.status !== 'delivered') throw new Error(`benchmark message was ${r.status}`);
      return performance.now() - t0;
    });
    return vsBare(
      'messaging.send-round-trip.tor',
      sends,
      bare,
      `median of ${sends.length} send() → verified ack on a warm session, ${bytes}-byte frames; anchor: median ` +
        `bare echo of ${bytes} bytes through the same two tors (SOCKS → onion). Includes the receiver’s ` +
        'synchronous journal write before its ack (exactly-once) and the sender’s outbox write beside the ' +
        'attempt; git copies run in the background in batches. A message frame this size needs two tor cells, ' +
        'the echo one (docs/protocol.md §5.7.2).',
    );
  });
}

/** Median ping/pong on the warm messaging session vs the median bare echo of the same bytes. */
export async function benchMessagePingRoundTrip(
  options: { rounds?: number; setup?: MessagingBenchSetup } = {},
): Promise<BenchResult> {
  const rounds = options.rounds ?? 100;
  return withSetup(options.setup, async (s) => {
    const bytes = encodeFrame({ t: 'ping', n: '00'.repeat(16) }).length;
    const { ours: pings, bare } = await interleaved(
      s,
      bytes,
      rounds,
      async () => (await s.a.messenger.ping(s.b.key.onion, { timeoutMs: 30_000 })).rttMs,
    );
    return vsBare(
      'messaging.ping-round-trip.tor',
      pings,
      bare,
      `median of ${pings.length} pings on the warm messaging session (libp2p/yamux + PQ frames) vs the bare echo of ${bytes} bytes.`,
    );
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const setup = await messagingBenchSetup();
  try {
    for (const r of [await benchMessagePingRoundTrip({ setup }), await benchMessageRoundTrip({ setup })]) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    await setup.close();
  }
}
