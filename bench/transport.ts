/**
 * Benchmark of the agent node's transport over the private Tor network:
 * - {@link benchTransport10MB}: 10 MB from agent A to agent B on one libp2p protocol stream (noise + yamux over
 *   the `/onion3` transport) vs the same 10 MB on a bare socket through the same two tors (a sink server behind
 *   its own onion on B's tor, reached through A's SOCKS port). Throughput ratio; the goal is ≥ 0.90.
 * Runs are interleaved (bare, libp2p, bare, …) on warm circuits so drift in tor's load hits both alike.
 * The network is `MMOGIT_TEST_NETWORK` (a testnet dir) when set, else a private one started here.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/transport.js`.
 * @module
 */
import '../src/_polyfill.js';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import type { Stream } from '@libp2p/interface';
import { retry } from '../src/_async.js';
import { AgentKey } from '../src/identity/keys.js';
import type { TorHandle } from '../src/tor/daemon.js';
import { publishOnion } from '../src/tor/onion-service.js';
import { socksConnect } from '../src/tor/socks.js';
import type { TorNetworkInfo } from '../src/tor/testnet.js';
import { type AgentNode, createAgentNode } from '../src/transport/node.js';
import { BARE_DIAL_RETRY, type BenchResult, median, round as roundTo, twoTors } from './_shared.js';
import type { BenchModule } from './_types.js';

export type { BenchResult };

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/transport.js';
/** The goal: libp2p-over-tor throughput ≥ 0.90 × a bare socket through the same tors. */
export const TRANSPORT_TARGET_RATIO = 0.9;
const SINK = '/mmogit-bench/sink/1.0.0';
const VPORT = 4001;
const CHUNK = 64 * 1024;
const MB = 1_000_000;

const round = (x: number, d = 3) => roundTo(x, d);

/** Two agent tors, two agent nodes with a warm connection, and a bare sink onion reachable from A's tor. */
export interface TransportBenchSetup {
  network: TorNetworkInfo;
  /** Seconds to push `bytes` A → B over a fresh protocol stream on the warm connection, until B's 1-byte ack. */
  libp2pTransfer(bytes: number): Promise<number>;
  /** Seconds to push `bytes` A's tor → B's tor on a fresh bare SOCKS stream, until the sink's 1-byte ack. */
  bareTransfer(bytes: number): Promise<number>;
  close(): Promise<void>;
}

/** A server that, repeatedly on one connection, reads an 8-byte length and that many bytes, then acks one byte. */
function sinkServer(): net.Server {
  return net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    let want = -1;
    let got = 0;
    let head = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (want < 0) {
        head = Buffer.concat([head, d]);
        if (head.length < 8) return;
        want = Number(head.readBigUInt64BE(0));
        got = head.length - 8;
        head = Buffer.alloc(0);
      } else got += d.length;
      if (got >= want) {
        s.write(Buffer.of(1));
        want = -1;
      }
    });
  });
}

async function writeAll(stream: Stream, bytes: number): Promise<void> {
  const chunk = new Uint8Array(CHUNK).fill(0x61);
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    const piece = bytes - sent >= CHUNK ? chunk : chunk.subarray(0, bytes - sent);
    if (!stream.send(piece)) await stream.onDrain({ signal: AbortSignal.timeout(120_000) });
  }
}

/** Starts (or joins) the network, two agent tors and nodes, the sink onion; warms both paths. */
export async function transportBenchSetup(): Promise<TransportBenchSetup> {
  const { network, torA, torB, cleanups, close } = await twoTors('mmogit-bench-transport-');
  try {
    const agent = async (tor: TorHandle) => {
      const key = AgentKey.random();
      const node: AgentNode = await createAgentNode({
        key,
        socks: { host: tor.socksHost, port: tor.socksPort },
        onion: { serviceId: key.serviceId, virtualPort: VPORT },
      });
      cleanups.push(() => node.stop());
      await publishOnion(tor, key, { targetPort: node.listenPort, virtualPort: VPORT, timeoutMs: 60_000 });
      return { key, node };
    };
    const [a, b] = await Promise.all([agent(torA), agent(torB)]);
    // B's sink: reads the 8-byte length, then that many bytes, then acks with one byte
    await b.node.handle(SINK, async (stream) => {
      let want = -1;
      let got = 0;
      for await (const chunk of stream) {
        let n = chunk.byteLength;
        if (want < 0) {
          const head = chunk.subarray(0, 8);
          want = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0));
          n -= 8;
        }
        got += n;
        // ack once everything arrived; keep reading until A closes its side
        if (got >= want && want >= 0) {
          stream.send(Uint8Array.of(1));
          want = Number.POSITIVE_INFINITY;
        }
      }
      await stream.close();
    });

    const sink = sinkServer();
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => sink.close(r)));
    const sinkKey = AgentKey.random();
    await publishOnion(torB, sinkKey, {
      targetPort: (sink.address() as net.AddressInfo).port,
      virtualPort: VPORT,
      timeoutMs: 60_000,
    });

    const header = (bytes: number) => {
      const h = new Uint8Array(8);
      new DataView(h.buffer).setBigUint64(0, BigInt(bytes));
      return h;
    };
    const libp2pTransfer = async (bytes: number) => {
      const stream = await a.node.dialProtocol(b.key.onion, SINK, { timeoutMs: 90_000 });
      const t0 = performance.now();
      stream.send(header(bytes));
      const ack = new Promise<void>((resolve, reject) => {
        stream.addEventListener('message', () => resolve(), { once: true });
        stream.addEventListener('close', (e) => (e.error ? reject(e.error) : resolve()), { once: true });
      });
      await writeAll(stream, bytes);
      await ack;
      const s = (performance.now() - t0) / 1000;
      await stream.close().catch(() => {});
      return s;
    };
    // One warm bare stream for all runs, as the libp2p side keeps one warm connection.
    // the descriptor may need a moment after upload
    const sock = await retry(
      () =>
        socksConnect(
          { socksPort: torA.socksPort, socksHost: torA.socksHost, host: sinkKey.onion, port: VPORT },
          { timeoutMs: 30_000 },
        ),
      BARE_DIAL_RETRY,
    );
    const bareSock = sock;
    bareSock.setNoDelay(true);
    bareSock.on('error', () => {});
    cleanups.push(async () => bareSock.destroy());
    const bareTransfer = async (bytes: number) => {
      const t0 = performance.now();
      const done = new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error('bare sink closed the connection'));
        bareSock.once('data', () => {
          bareSock.off('close', onClose);
          resolve();
        });
        bareSock.once('close', onClose);
      });
      bareSock.write(header(bytes));
      const chunk = Buffer.alloc(CHUNK, 0x61);
      for (let sent = 0; sent < bytes; sent += CHUNK) {
        if (!bareSock.write(bytes - sent >= CHUNK ? chunk : chunk.subarray(0, bytes - sent))) {
          await new Promise((r) => bareSock.once('drain', r));
        }
      }
      await done;
      return (performance.now() - t0) / 1000;
    };

    // Warm both paths: circuits and the libp2p connection (identify included).
    await libp2pTransfer(256 * 1024);
    await bareTransfer(256 * 1024);
    return { network, libp2pTransfer, bareTransfer, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * 10 MB A → B: median throughput over the agent node's libp2p stream vs a bare socket through the same tors.
 */
export async function benchTransport10MB(
  options: { setup?: TransportBenchSetup; rounds?: number; bytes?: number } = {},
): Promise<BenchResult> {
  const bytes = options.bytes ?? 10 * MB;
  const rounds = options.rounds ?? 3;
  const s = options.setup ?? (await transportBenchSetup());
  try {
    const bare: number[] = [];
    const lp: number[] = [];
    for (let i = 0; i < rounds; i++) {
      bare.push(bytes / MB / (await s.bareTransfer(bytes)));
      lp.push(bytes / MB / (await s.libp2pTransfer(bytes)));
    }
    const value = median(lp);
    const anchor = median(bare);
    return {
      name: 'transport: 10 MB A→B over the agent libp2p stream through tor (vs bare socket through tor)',
      value: round(value),
      unit: 'MB/s',
      anchor: round(anchor),
      ratio: round(value / anchor),
      target: TRANSPORT_TARGET_RATIO,
      command: COMMAND,
      notes: `median of ${rounds} interleaved runs each; libp2p ${lp.map((x) => round(x, 2)).join(', ')} MB/s, bare ${bare.map((x) => round(x, 2)).join(', ')} MB/s; noise + yamux (1 MiB initial / 8 MiB max window)`,
    };
  } finally {
    if (!options.setup) await s.close();
  }
}

/** 10 MB through the agent libp2p stream against a bare socket through the same tors. */
export const bench: BenchModule<TransportBenchSetup> = {
  name: 'transport',
  needsTor: true,
  setup: transportBenchSetup,
  run: { benchTransport10MB: ({ setup }) => benchTransport10MB({ setup }) },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await benchTransport10MB())}\n`);
}
