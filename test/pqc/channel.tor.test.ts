// The PQ channel through real onion services on the run's private Tor network (test/global-setup.ts): the
// handshake binds the onion that was dialled, and the channel's throughput is compared with the bare tor stream
// (the goal: a 10 MB transfer through the channel reaches ≥ 0.90× a bare socket through tor).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { acceptSession, HandshakeError, initiateSession } from '../../src/pqc/index.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { dialOnion } from '../../src/tor/socks.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { startTestTor } from '../helpers/tor.js';
import { type Listener, listen, settle } from './_net.js';

const alice = AgentKey.random();
const bob = AgentKey.random();
const TEN_MB = 10_000_000;

let tmp: string;
let torA: TorHandle;
let torB: TorHandle;
let server: Listener;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-pqc-tor-'));
  [torA, torB] = await Promise.all([startTestTor(tmp, { name: 'a' }), startTestTor(tmp, { name: 'b' })]);
  server = await listen();
  await publishOnion(torB, bob, { targetPort: server.port });
  acceptTagged();
}, 120_000);

afterAll(async () => {
  await server?.close();
  await Promise.all([torA?.stop(), torB?.stop()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The first 16 bytes a stream sends: the tag dialBob writes to find its own accepted socket. */
function readTag(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const tryRead = () => {
      const tag = s.read(16) as Buffer | null;
      if (!tag) return;
      s.off('readable', tryRead);
      resolve(tag.toString('hex'));
    };
    s.on('readable', tryRead);
    s.once('close', () => reject(new Error('closed before its tag')));
    tryRead();
  });
}

// Bob's listener may accept streams that alice's side gave up on (a SOCKS attempt that timed out after tor
// had already opened the service side), so accepted sockets are matched to dials by a tag, never by order.
const awaitingTag = new Map<string, (s: net.Socket) => void>();
function acceptTagged(): void {
  void (async () => {
    for (;;) {
      const s = await server.next();
      readTag(s).then(
        (tag) => {
          const deliver = awaitingTag.get(tag);
          awaitingTag.delete(tag);
          if (deliver) deliver(s);
          else s.destroy();
        },
        () => s.destroy(),
      );
    }
  })();
}

/** alice's tor → bob's onion; resolves with both ends of the stream. */
async function dialBob(): Promise<{ client: net.Socket; served: net.Socket }> {
  const tag = randomBytes(16);
  const accepted = new Promise<net.Socket>((resolve) => awaitingTag.set(tag.toString('hex'), resolve));
  const client = await dialOnion(
    { socksPort: torA.socksPort, onion: bob.onion, port: 4001, retry: { attempts: 10 } },
    { timeoutMs: 60_000 },
  );
  client.write(tag);
  const served = await accepted;
  return { client, served };
}

interface Run {
  ms: number;
  cpuMs: number;
}

async function bareTransfer(bytes: number): Promise<Run> {
  const { client, served } = await dialBob();
  try {
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const done = new Promise<void>((resolve, reject) => {
      let got = 0;
      served.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= bytes) resolve();
      });
      served.once('error', reject);
    });
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      const piece = sent + chunk.length > bytes ? chunk.subarray(0, bytes - sent) : chunk;
      if (!client.write(piece)) await new Promise<void>((resolve) => client.once('drain', resolve));
    }
    await done;
    const cpu = process.cpuUsage(cpu0);
    return { ms: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    client.destroy();
    served.destroy();
  }
}

async function channelTransfer(bytes: number): Promise<Run> {
  const { client, served } = await dialBob();
  try {
    const [i, r] = await Promise.all([
      initiateSession(channelFromDuplex(client), alice, { expectedPeer: bob.onion, maxPayload: bytes }),
      acceptSession(channelFromDuplex(served), bob, { maxPayload: bytes }),
    ]);
    const payload = new Uint8Array(bytes).fill(0x5a);
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const [, got] = await Promise.all([i.send(payload), r.receive()]);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpu0);
    expect(got?.length).toBe(bytes);
    expect(got?.every((b) => b === 0x5a)).toBe(true);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    client.destroy();
    served.destroy();
  }
}

describe('pq channel over onion services', () => {
  it('completes the hybrid handshake with the dialled onion and carries payloads both ways', async () => {
    const { client, served } = await dialBob();
    try {
      const [i, r] = await Promise.all([
        initiateSession(channelFromDuplex(client), alice, { expectedPeer: bob.onion }),
        acceptSession(channelFromDuplex(served), bob),
      ]);
      expect(i.suite).toBe('hybrid-x25519-mlkem768');
      expect(i.peer.onion).toBe(bob.onion);
      expect(r.peer.onion).toBe(alice.onion);
      expect(Buffer.from(i.transcriptHash).equals(Buffer.from(r.transcriptHash))).toBe(true);
      const big = new Uint8Array(300_000).map((_, n) => n & 0xff);
      await Promise.all([i.send(big), r.send(Uint8Array.of(1))]);
      expect(Buffer.from((await r.receive()) as Uint8Array).equals(Buffer.from(big))).toBe(true);
      expect(Array.from((await i.receive()) as Uint8Array)).toEqual([1]);
      await i.close();
      expect(await r.receive()).toBeNull();
      process.stderr.write(`pqc over tor: handshake ${i.handshakeMs.toFixed(1)} ms (initiator wall clock)\n`);
    } finally {
      client.destroy();
      served.destroy();
    }
  });

  it('an agent answering on an onion with another identity is refused (wrong-identity)', async () => {
    const mallory = AgentKey.random();
    const { client, served } = await dialBob();
    try {
      const [i] = await Promise.all([
        settle(initiateSession(channelFromDuplex(client), alice, { expectedPeer: bob.onion })),
        settle(acceptSession(channelFromDuplex(served), mallory)),
      ]);
      expect(i.ok).toBe(false);
      expect((i as { error: unknown }).error).toBeInstanceOf(HandshakeError);
      expect((i as { error: HandshakeError }).error.reason).toBe('wrong-identity');
    } finally {
      client.destroy();
      served.destroy();
    }
  });

  it('a 10 MB transfer through the channel keeps up with the bare tor stream', async () => {
    const bare: Run[] = [];
    const secure: Run[] = [];
    for (let n = 0; n < 3; n++) {
      // Alternate the order so drift in the network's speed hits both sides alike.
      if (n % 2 === 0) {
        bare.push(await bareTransfer(TEN_MB));
        secure.push(await channelTransfer(TEN_MB));
      } else {
        secure.push(await channelTransfer(TEN_MB));
        bare.push(await bareTransfer(TEN_MB));
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number;
    const mib = TEN_MB / 2 ** 20;
    const bareRate = mib / (median(bare.map((r) => r.ms)) / 1000);
    const secureRate = mib / (median(secure.map((r) => r.ms)) / 1000);
    const ratio = secureRate / bareRate;
    process.stderr.write(
      `pqc over tor: bare ${bareRate.toFixed(1)} MiB/s (${median(bare.map((r) => r.cpuMs)).toFixed(0)} ms CPU), ` +
        `channel ${secureRate.toFixed(1)} MiB/s (${median(secure.map((r) => r.cpuMs)).toFixed(0)} ms CPU), ` +
        `ratio ${ratio.toFixed(3)}\n`,
    );
    // The goal is 0.90 (bench/pqc-tor.ts reports it). Sender, receiver and all six tor hops share this
    // 2-core machine, so the channel's ~50 ms of AES-GCM and copies per 10 MB gets multiplied by CPU contention
    // when other work runs; the floor here catches real regressions (tiny frames, per-byte JS work) only.
    expect(ratio).toBeGreaterThan(0.5);
  }, 300_000);
});
