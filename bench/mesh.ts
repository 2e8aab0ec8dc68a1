/**
 * Benchmarks of the post-quantum mesh (src/mesh), all on 127.0.0.1 with relays as separate processes:
 * - {@link benchMeshThroughput}: bytes through 1, 2 and 3 hops vs a chain of socat forwarders of the same length;
 * - {@link benchMeshRtt}: the round trip a hop adds, vs the same socat chain;
 * - {@link benchMeshBuild}: a 3-hop circuit build's CPU (client and relays) and wall time;
 * - {@link benchMeshHandshakeCpu}: one hop's handshake CPU vs the bare primitives it needs, same run;
 * - {@link benchMeshBeaconCost}: what beacons and keepalives cost an idle client, vs a 1 Mbit/s link.
 * MTTD/MTTR over 100 kills and the 50 MB kill: bench/mesh-failover.ts.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/mesh.js [handshake|build|rtt|throughput|beacon …]`.
 * @module
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { AgentKey } from '../src/identity/keys.js';
import { SIGNING_CONTEXTS } from '../src/identity/signing.js';
import { answerCreate, startCreate } from '../src/mesh/handshake.js';
import {
  Circuit,
  exitPolicyFrom,
  LinkPool,
  Mesh,
  type MeshStream,
  Relay,
  type RelayInfo,
} from '../src/mesh/index.js';
import { DATA_CHUNK } from '../src/mesh/streams.js';
import {
  counterNonce,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
  verifyEd25519,
  x25519Ephemeral,
  x25519Shared,
} from '../src/pqc/_primitives.js';
import { processCpuMs, RelayFarm, serverProcess, socatChain } from './_mesh-net.js';
import { type BenchResult, median, round } from './_shared.js';
import type { BenchModule } from './_types.js';

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/mesh.js';
const MIB = 1024 * 1024;

async function readN(s: net.Socket | MeshStream, n: number): Promise<number> {
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= n) resolve();
    });
    s.once('error', reject);
    s.once('end', () =>
      got >= n ? resolve() : reject(new Error(`stream ended after ${got} of ${n} bytes`)),
    );
  });
  return performance.now() - t0;
}

function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.setNoDelay(true);
    c.once('error', reject);
  });
}

/** A mesh client over exactly these relays (standby off unless asked). */
function meshOver(relays: RelayInfo[], hops: number, standby = false): Mesh {
  return new Mesh({ relays, hops, standby });
}

/**
 * AES-256-GCM over 16 KiB cells in this process for ~300 ms (MiB/s): the crypto ceiling at this moment's load,
 * so a throughput row can say how much of it is crypto.
 */
function gcmCellRate(): number {
  const key = randomBytes(32);
  const cell = Buffer.alloc(16_384);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    const c = createCipheriv('aes-256-gcm', key, counterNonce(n++));
    c.update(cell);
    c.final();
    c.getAuthTag();
  }
  return (n * cell.length) / MIB / ((performance.now() - t0) / 1000);
}

/**
 * Throughput through 1/2/3 hops vs socat chains of the same length (median of 3 runs of 64 MiB each), with the
 * CPU each mesh process spent per data cell.
 */
export async function benchMeshThroughput(): Promise<BenchResult[]> {
  const bytes = 64 * MIB;
  const gcm = gcmCellRate();
  const src = await serverProcess('source', bytes);
  const farm = await new RelayFarm([`127.0.0.1:${src.port}`]).start(3);
  const out: BenchResult[] = [];
  try {
    for (const hops of [1, 2, 3]) {
      const chain = await socatChain(hops, src.port);
      const mesh = meshOver(
        farm.relays.slice(0, hops).map((r) => r.info),
        hops,
      );
      try {
        const warm = await mesh.connect(`127.0.0.1:${src.port}`);
        await readN(warm, bytes);
        const meshRates: number[] = [];
        const socatRates: number[] = [];
        // CPU of the client and of each relay during each mesh run (all threads): is the run CPU-bound (about
        // 2 cores busy), and what does a cell cost each process
        const cpuPerCell: { client: number; relays: number[]; cores: number }[] = [];
        const relays = farm.relays.slice(0, hops);
        for (let i = 0; i < 3; i++) {
          const relay0 = await Promise.all(relays.map((r) => processCpuMs(r.pid)));
          const cpu0 = process.cpuUsage();
          const s = await mesh.connect(`127.0.0.1:${src.port}`);
          const ms = await readN(s, bytes);
          const cpu = process.cpuUsage(cpu0);
          const relay1 = await Promise.all(relays.map((r) => processCpuMs(r.pid)));
          meshRates.push(bytes / MIB / (ms / 1000));
          const cells = bytes / DATA_CHUNK;
          const relayMs = relay1.map((x, j) => x - (relay0[j] as number));
          const clientMs = (cpu.user + cpu.system) / 1000;
          cpuPerCell.push({
            client: (clientMs * 1000) / cells,
            relays: relayMs.map((x) => (x * 1000) / cells),
            cores: (clientMs + relayMs.reduce((a, b) => a + b, 0)) / ms,
          });
          const c = await connectTcp(chain.port);
          socatRates.push(bytes / MIB / ((await readN(c, bytes)) / 1000));
          c.destroy();
        }
        const m = median(meshRates);
        const a = median(socatRates);
        out.push({
          name: `mesh throughput, ${hops} hop${hops > 1 ? 's' : ''} vs socat chain`,
          value: round(m),
          unit: 'MiB/s',
          anchor: round(a),
          ratio: round(m / a, 3),
          ...(hops === 3 ? { target: 0.5, targetOn: 'ratio' as const, targetOp: '>=' as const } : {}),
          command: COMMAND,
          notes: `${bytes / MIB} MiB per run, median of 3; relays, socat and the source are separate processes on 2 shared cores; each mesh byte is AES-256-GCM-processed ${4 * hops} times on its way (per hop: link open, layer seal, link seal; at the client: link open and ${hops} layer open${hops > 1 ? 's' : ''}), socat only copies; one core sealed 16 KiB cells at ${round(gcm, 0)} MiB/s at this run's load (a fresh cipher per cell, as the mesh does); CPU per 16 KiB of stream data (DATA_CHUNK bytes: one 16 KiB-class cell's worth; bulk goes in 64 KiB-class cells since mesh protocol 2), medians of the 3 runs (all threads): client ${round(median(cpuPerCell.map((x) => x.client)), 0)} µs, relays ${relays.map((_, j) => round(median(cpuPerCell.map((x) => x.relays[j] as number)), 0)).join(' / ')} µs (guard first), client + relays kept ${round(median(cpuPerCell.map((x) => x.cores)), 2)} cores busy`,
        });
      } finally {
        await mesh.close();
        chain.close();
      }
    }
  } finally {
    await farm.close();
    src.proc.kill('SIGKILL');
  }
  return out;
}

/** Round trips of 64 bytes, one at a time: each one's time (ms). */
async function ping(s: net.Socket | MeshStream, n: number): Promise<number[]> {
  const msg = Buffer.alloc(64, 1);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const back = new Promise<void>((resolve) => {
      let got = 0;
      const on = (d: Buffer) => {
        got += d.length;
        if (got >= msg.length) {
          s.off('data', on);
          resolve();
        }
      };
      s.on('data', on);
    });
    s.write(msg);
    await back;
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * The 3-hop echo with the relays, the client and the echo server all in this process: the cells' code and
 * crypto without the process hand-offs (8 per round trip) of the rows above. A diagnostic, no target.
 */
async function rttInOneProcess(): Promise<BenchResult> {
  const echo = net.createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => {});
    c.pipe(c);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const port = (echo.address() as net.AddressInfo).port;
  const relays: Relay[] = [];
  const infos: RelayInfo[] = [];
  for (let i = 0; i < 3; i++) {
    const key = AgentKey.random();
    const relay = new Relay({ key, exitPolicy: exitPolicyFrom([`127.0.0.1:${port}`]) });
    relays.push(relay);
    const tcp = await relay.listen('127.0.0.1', 0);
    infos.push({ publicKey: key.publicKey, onion: key.onion, tcp, exitPolicy: relay.policy });
  }
  const mesh = meshOver(infos, 3);
  try {
    const s = await mesh.connect(`127.0.0.1:${port}`);
    await ping(s, 50);
    const cpu0 = process.cpuUsage();
    const m = median(await ping(s, 300));
    const cpu = process.cpuUsage(cpu0);
    s.destroy();
    return {
      name: 'mesh round trip, 3 hops, relays, client and echo in one process (diagnostic)',
      value: round(m, 3),
      unit: 'ms',
      command: COMMAND,
      notes: `64 B echo, median of 300; CPU per round trip (mean, all threads) ${round((cpu.user + cpu.system) / 300, 0)} µs; the same cells and crypto as the 3-hop row above without its process hand-offs`,
    };
  } finally {
    await mesh.close();
    for (const r of relays) await r.close();
    echo.close();
  }
}

/** Round trips of 64 bytes through 1/2/3 hops vs socat chains: what one hop adds. */
export async function benchMeshRtt(): Promise<BenchResult[]> {
  const echo = await serverProcess('echo');
  const farm = await new RelayFarm([`127.0.0.1:${echo.port}`]).start(3);
  const rows: { hops: number; mesh: number; socat: number; clientUs: number; relayUs: number[] }[] = [];
  try {
    for (const hops of [1, 2, 3]) {
      const chain = await socatChain(hops, echo.port);
      const relays = farm.relays.slice(0, hops);
      const mesh = meshOver(
        relays.map((r) => r.info),
        hops,
      );
      try {
        const s = await mesh.connect(`127.0.0.1:${echo.port}`);
        await ping(s, 50); // warm-up
        const c = await connectTcp(chain.port);
        await ping(c, 50);
        // CPU per round trip of this process (the client) and of each relay, all threads: where the time goes
        const relayCpu0 = await Promise.all(relays.map((r) => processCpuMs(r.pid)));
        const cpu0 = process.cpuUsage();
        const m = median(await ping(s, 300));
        const cpu = process.cpuUsage(cpu0);
        const relayCpu = await Promise.all(relays.map((r) => processCpuMs(r.pid)));
        const a = median(await ping(c, 300));
        rows.push({
          hops,
          mesh: m,
          socat: a,
          clientUs: (cpu.user + cpu.system) / 300,
          relayUs: relayCpu.map((x, i) => ((x - (relayCpu0[i] as number)) * 1000) / 300),
        });
        c.destroy();
        s.destroy();
      } finally {
        await mesh.close();
        chain.close();
      }
    }
  } finally {
    await farm.close();
    echo.proc.kill('SIGKILL');
  }
  const one = await rttInOneProcess();
  const out: BenchResult[] = rows.map((r) => ({
    name: `mesh added round trip per hop, ${r.hops} hop${r.hops > 1 ? 's' : ''}`,
    value: round((r.mesh - r.socat) / r.hops, 3),
    unit: 'ms',
    ...(r.hops === 3 ? { target: 0.2, targetOn: 'value' as const, targetOp: '<=' as const } : {}),
    command: COMMAND,
    notes: `64 B echo, median of 300: mesh ${round(r.mesh, 3)} ms, socat chain ${round(r.socat, 3)} ms; value = (mesh − socat) ÷ hops; CPU per round trip (mean, all threads): client ${round(r.clientUs, 0)} µs, relays ${r.relayUs.map((u) => round(u, 0)).join(' / ')} µs`,
  }));
  out.push(one);
  return out;
}

/** A 3-hop build on warm links: CPU of the client and of the three relays (from /proc), and wall time. */
export async function benchMeshBuild(): Promise<BenchResult[]> {
  const farm = await new RelayFarm([]).start(3);
  const pool = new LinkPool();
  const path = farm.relays.map((r) => r.info);
  try {
    const cold0 = process.cpuUsage();
    const tCold = performance.now();
    const first = await Circuit.build(path, { pool });
    const coldMs = performance.now() - tCold;
    const coldCpu = process.cpuUsage(cold0);
    first.destroy();
    const client: number[] = [];
    const total: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < 30; i++) {
      const relays0 = await Promise.all(farm.relays.map((r) => processCpuMs(r.pid)));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const c = await Circuit.build(path, { pool });
      wall.push(performance.now() - t0);
      const cu = process.cpuUsage(c0);
      // let the relays finish their side's bookkeeping before reading their CPU
      await new Promise((r) => setTimeout(r, 20));
      const relays1 = await Promise.all(farm.relays.map((r) => processCpuMs(r.pid)));
      const clientMs = (cu.user + cu.system) / 1000;
      client.push(clientMs);
      total.push(clientMs + relays1.reduce((a, b, j) => a + b - (relays0[j] as number), 0));
      c.destroy();
    }
    return [
      {
        name: 'mesh 3-hop circuit build CPU, client + relays (warm links)',
        value: round(median(total), 2),
        unit: 'ms',
        target: 15,
        targetOn: 'value',
        targetOp: '<=',
        command: COMMAND,
        notes: `median of 30; client alone ${round(median(client), 2)} ms; relays' CPU from /proc/<pid>/task/*/schedstat (ns); cold (a new guard link and the first handshakes of the process): ${round((coldCpu.user + coldCpu.system) / 1000, 1)} ms client CPU, ${round(coldMs, 1)} ms wall`,
      },
      {
        name: 'mesh 3-hop circuit build wall time on loopback (warm links)',
        value: round(median(wall), 2),
        unit: 'ms',
        command: COMMAND,
        notes: 'median of 30: three round trips (CREATE, EXTEND, EXTEND) with relays as separate processes',
      },
    ];
  } finally {
    pool.closeAll();
    await farm.close();
  }
}

/** CPU of one hop's handshake (both sides, this process) vs the bare primitives it needs, measured together. */
export async function benchMeshHandshakeCpu(): Promise<BenchResult> {
  const relay = AgentKey.random();
  const runs = 200;
  const cpu = (fn: () => void): number => {
    for (let i = 0; i < 20; i++) fn();
    const c0 = process.cpuUsage();
    for (let i = 0; i < runs; i++) fn();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / runs;
  };
  const hop = cpu(() => {
    const p = startCreate(relay.publicKey);
    p.finish(answerCreate(relay, p.body).created);
  });
  // The same primitives the handshake calls (src/pqc): X25519 ephemerals are made from random bytes, never by
  // generateKeyPairSync + JWK export, which can deadlock Node 20 / OpenSSL 3.0 (docs/decisions.md).
  const ctx = SIGNING_CONTEXTS.meshCircuit;
  const bare = cpu(() => {
    const kp = mlkemKeygen();
    const enc = mlkemEncapsulate(kp.publicKey);
    if (!enc) throw new Error('ML-KEM encapsulation failed');
    mlkemDecapsulate(enc.cipherText, kp.secretKey);
    const a = x25519Ephemeral();
    const b = x25519Ephemeral();
    x25519Shared(a.privateKey, b.publicKey);
    x25519Shared(b.privateKey, a.publicKey);
    const th = new Uint8Array(createHash('sha256').update('x').digest());
    verifyEd25519(ctx, th, relay.sign(ctx, th), relay.publicKey);
  });
  return {
    name: 'mesh handshake CPU per hop, both sides, vs bare primitives',
    value: round(hop, 3),
    unit: 'ms',
    anchor: round(bare, 3),
    ratio: round(hop / bare, 3),
    target: 2,
    targetOn: 'ratio',
    targetOp: '<=',
    command: COMMAND,
    notes: `median-free mean of ${runs}; anchor = the same run's CPU for ML-KEM-768 keygen+encaps+decaps, 2 X25519 ephemerals + DHs, one Ed25519 sign + verify (src/pqc primitives, as the handshake calls them); Katzenpost's native PQ Noise handshake: 0.76 ms`,
  };
}

/** Beacons and keepalives of an idle client (a primary and a standby leg, 500 ms interval) vs 1 Mbit/s. */
export async function benchMeshBeaconCost(): Promise<BenchResult> {
  const echo = await serverProcess('echo');
  const farm = await new RelayFarm([`127.0.0.1:${echo.port}`]).start(5);
  const mesh = meshOver(
    farm.relays.map((r) => r.info),
    3,
    true,
  );
  try {
    const s = await mesh.connect(`127.0.0.1:${echo.port}`);
    for (let i = 0; i < 200 && mesh.circuits().length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 1_500));
    const a = mesh.linkStats();
    const seconds = 10;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = mesh.linkStats();
    s.destroy();
    const perSec = (b.bytesIn - a.bytesIn + b.bytesOut - a.bytesOut) / seconds;
    const pct = (100 * perSec) / 125_000;
    return {
      name: 'mesh beacon cost of an idle client, % of 1 Mbit/s',
      value: round(pct, 3),
      unit: '%',
      target: 1,
      targetOn: 'value',
      targetOp: '<=',
      command: COMMAND,
      notes: `${round(perSec, 0)} B/s both directions over ${seconds} s on ${b.links} guard link(s), 2 legs: a beacon to the primary's exit every 500 ms, to each of its hops every 10th, to the standby every 10th; cells and PQ framing counted, TCP/IP headers (≈52 B per segment) not`,
    };
  } finally {
    await mesh.close();
    await farm.close();
    echo.proc.kill('SIGKILL');
  }
}

/** The mesh benchmarks (loopback only; no tor). */
export const bench: BenchModule = {
  name: 'mesh',
  needsTor: false,
  timeoutMs: 600_000,
  run: {
    benchMeshHandshakeCpu: () => benchMeshHandshakeCpu(),
    benchMeshBuild: () => benchMeshBuild(),
    benchMeshRtt: () => benchMeshRtt(),
    benchMeshThroughput: () => benchMeshThroughput(),
    benchMeshBeaconCost: () => benchMeshBeaconCost(),
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.slice(2);
  const results: BenchResult[] = [];
  for (const [name, fn] of Object.entries(bench.run)) {
    if (only.length > 0 && !only.some((o) => name.toLowerCase().includes(o.toLowerCase()))) continue;
    const r = await fn({ setup: undefined, signal: new AbortController().signal });
    results.push(...(Array.isArray(r) ? r : [r]));
    process.stderr.write(`${name} done\n`);
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  process.exit(0);
}
