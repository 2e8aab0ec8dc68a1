/**
 * The built-in private Tor network: directory authorities (keys from `tor-gencert`), optional relays and an
 * optional obfs4 bridge, all on 127.0.0.1 with `TestingTorNetwork 1`, so agents can talk with no internet.
 * This file is the public API, one function per step of {@link testnetUp}; the steps' parts live beside it:
 * `testnet-torrc.ts` (pure torrc builders), `testnet-keys.ts`, `testnet-processes.ts`, `testnet-probe.ts`
 * and `testnet-network.ts` (`network.json`).
 *
 * Layout of the network directory:
 * - `network.json`: what clients need ({@link TorNetworkInfo}); read with {@link loadNetwork}.
 * - `processes.json`: pid, role and torrc of every tor started; {@link testnetDown} stops exactly those.
 * - `nodes/<nickname>/`: each node's torrc, DataDirectory and `notice.log`.
 *
 * The network's tors are detached (they outlive `mmogit testnet up`); they are owned by `processes.json`
 * and stopped by `testnetDown`. With `ownerPid` they also exit when that process dies (tests).
 *
 * @example
 * const net = await testnetUp({ dir: '/tmp/mmogit-net' });   // ~12–25 s
 * const tor = await startTor({ dataDir, network: net });
 * await testnetDown({ dir: '/tmp/mmogit-net' });
 * @module
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import { freePorts, isOurProcess, terminate } from './_process.js';
import { nodelayEnv } from './nodelay.js';
import { authorityKeys, relayFingerprint, type TestnetTools, testnetError } from './testnet-keys.js';
import {
  loadNetwork,
  NETWORK_FILE,
  type TestnetAuthority,
  type TestnetRelay,
  type TorNetworkInfo,
  writeNetwork,
} from './testnet-network.js';
import { type BridgeNode, bridgeLinesOf, PROBE_DIR, probe, type TestnetProgress } from './testnet-probe.js';
import {
  launch,
  PROCESSES_FILE,
  type ProcessRecord,
  readProcesses,
  writeProcesses,
} from './testnet-processes.js';
import { authorityLines, bridgeLines, clientLines, EMPTY_FILE, serverLines } from './testnet-torrc.js';
import { findExecutable, findTransportBinaries } from './torrc.js';

export {
  loadNetwork,
  NETWORK_FILE_VERSION,
  type TestnetAuthority,
  type TestnetRelay,
  type TorNetworkInfo,
} from './testnet-network.js';
export type { TestnetProgress } from './testnet-probe.js';

/**
 * Default number of directory authorities: 4 alone make a working onion network (every authority is also a
 * relay; the tor tests run on exactly this network).
 */
export const DEFAULT_TESTNET_AUTHORITIES = 4;
/** Default number of extra relays. */
export const DEFAULT_TESTNET_RELAYS = 0;
/** How long {@link testnetUp} waits for a probe client to reach 100 % by default. */
export const DEFAULT_TESTNET_TIMEOUT_MS = 120_000;

/** One process of a running private network. */
export interface TestnetProcess {
  role: ProcessRecord['role'];
  nickname: string;
  pid: number;
  alive: boolean;
}

export interface TestnetUpOptions extends AbortOptions {
  /** Directory for the network's state (created if missing; only our own files in it are replaced). */
  dir: string;
  /** Directory authorities (≥ 1). Default {@link DEFAULT_TESTNET_AUTHORITIES}. */
  authorities?: number;
  /** Extra relays. Default {@link DEFAULT_TESTNET_RELAYS}. Authorities + relays must be ≥ 4 for onions. */
  relays?: number;
  /** obfs4 bridges (needs `obfs4proxy` or `lyrebird`). Default 0. */
  bridges?: number;
  /** When this process dies, the network's tors exit too (`__OwningControllerProcess`; ~13 s later). */
  ownerPid?: number;
  torBinary?: string;
  /**
   * Preload the TCP_NODELAY shim into every tor of the network where a C compiler can build it (default
   * true; `MMOGIT_TOR_NODELAY=0` turns it off too). See nodelay.ts.
   */
  nodelay?: boolean;
  onProgress?: (p: TestnetProgress) => void;
}

const NODES_DIR = 'nodes';

/** How many nodes of each kind, checked. */
interface Counts {
  authorities: number;
  relays: number;
  bridges: number;
}

/** A node to launch: where it lives and its whole torrc. */
interface PlannedNode {
  role: ProcessRecord['role'];
  nickname: string;
  dataDir: string;
  lines: string[];
}

/** Everything the key step produced. */
interface Plan {
  authorities: TestnetAuthority[];
  relays: TestnetRelay[];
  bridges: BridgeNode[];
  nodes: PlannedNode[];
}

function countsOf(options: TestnetUpOptions): Counts {
  const authorities = options.authorities ?? DEFAULT_TESTNET_AUTHORITIES;
  const relays = options.relays ?? DEFAULT_TESTNET_RELAYS;
  const bridges = options.bridges ?? 0;
  if (!Number.isInteger(authorities) || authorities < 1 || authorities > 16) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'authorities must be an integer in 1..16');
  }
  if (!Number.isInteger(relays) || relays < 0 || relays > 32 || !Number.isInteger(bridges) || bridges < 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'relays must be an integer in 0..32, bridges ≥ 0');
  }
  return { authorities, relays, bridges };
}

async function findTools(dir: string, torBinary: string | undefined): Promise<TestnetTools> {
  const tor = await findExecutable(torBinary ?? 'tor');
  if (!tor) throw new MmogitError('ERR_TOR_NOT_FOUND', `tor binary not found: ${torBinary ?? 'tor'}`);
  const gencert = await findExecutable('tor-gencert');
  if (!gencert) throw new MmogitError('ERR_TOR_NOT_FOUND', 'tor-gencert not found (Debian package tor)');
  return { tor, gencert, empty: join(dir, EMPTY_FILE) };
}

/** Refuses a directory whose network still runs, then removes only our own files from it. */
async function prepareDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const status = await testnetStatus({ dir });
  if (status.running) {
    throw testnetError(`a private network is already running in ${dir}; run testnet down first`, {
      dir,
      pids: status.processes.filter((p) => p.alive).map((p) => p.pid),
    });
  }
  // Only our own files: the directory may be one the user also uses for other things.
  await rm(join(dir, NODES_DIR), { recursive: true, force: true });
  await rm(join(dir, PROBE_DIR), { recursive: true, force: true });
  await rm(join(dir, NETWORK_FILE), { force: true });
  await rm(join(dir, PROCESSES_FILE), { force: true });
  await writeFile(join(dir, EMPTY_FILE), '');
}

const nick = (kind: string, i: number) => `${kind}${String(i).padStart(3, '0')}`;

/** Makes every node's keys (authorities in parallel: ~1 s of CPU each) and its torrc. */
async function planNodes(
  tools: TestnetTools,
  dir: string,
  counts: Counts,
  ownerPid: number | undefined,
  signal: AbortSignal,
): Promise<Plan> {
  const ports = await freePorts(counts.authorities * 2 + counts.relays + counts.bridges * 2);
  const spare = ports.slice(counts.authorities * 2);
  const takePort = (): number => {
    const port = spare.pop();
    if (port === undefined) throw testnetError('ran out of free ports');
    return port;
  };
  const authorities = await Promise.all(
    Array.from({ length: counts.authorities }, async (_, i): Promise<TestnetAuthority> => {
      const nickname = nick('auth', i);
      const orPort = ports[2 * i] as number;
      const dirPort = ports[2 * i + 1] as number;
      const keys = await authorityKeys(tools, join(dir, NODES_DIR, nickname), nickname, dirPort, signal);
      return { nickname, orPort, dirPort, ...keys };
    }),
  );
  const nodes: PlannedNode[] = authorities.map((a) => {
    const dataDir = join(dir, NODES_DIR, a.nickname);
    return {
      role: 'authority',
      nickname: a.nickname,
      dataDir,
      lines: [...serverLines(dir, authorities, { ...a, dataDir, ownerPid }), ...authorityLines(a.dirPort)],
    };
  });
  const server = async (nickname: string) => {
    const dataDir = join(dir, NODES_DIR, nickname);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const orPort = takePort();
    const fingerprint = await relayFingerprint(tools, dataDir, nickname, signal);
    return {
      nickname,
      dataDir,
      orPort,
      fingerprint,
      lines: serverLines(dir, authorities, { nickname, orPort, dataDir, ownerPid }),
    };
  };
  const relays: TestnetRelay[] = [];
  for (let i = 0; i < counts.relays; i++) {
    const { nickname, dataDir, orPort, fingerprint, lines } = await server(nick('relay', i));
    relays.push({ nickname, orPort, fingerprint });
    nodes.push({ role: 'relay', nickname, dataDir, lines });
  }
  const bridges: BridgeNode[] = [];
  if (counts.bridges > 0) {
    const pt = (await findTransportBinaries(['obfs4 127.0.0.1:1'])).obfs4;
    if (!pt) throw new MmogitError('ERR_TOR_NOT_FOUND', 'obfs4proxy (or lyrebird) not found for bridges');
    for (let i = 0; i < counts.bridges; i++) {
      const { nickname, dataDir, fingerprint, lines } = await server(nick('bridge', i));
      const ptPort = takePort();
      bridges.push({ nickname, dataDir, ptPort, fingerprint });
      nodes.push({ role: 'bridge', nickname, dataDir, lines: [...lines, ...bridgeLines(pt, ptPort)] });
    }
  }
  return { authorities, relays, bridges, nodes };
}

/** Writes each node's torrc and starts it, recording every pid in `records` (and `processes.json`) at once. */
async function launchNodes(
  tools: TestnetTools,
  dir: string,
  nodes: readonly PlannedNode[],
  records: ProcessRecord[],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  for (const node of nodes) {
    const torrc = join(node.dataDir, 'torrc');
    await writeFile(torrc, `${node.lines.join('\n')}\n`);
    const child = launch(tools.tor, tools.empty, torrc, join(node.dataDir, 'notice.log'), env);
    if (child.pid === undefined) throw testnetError(`could not start tor for ${node.nickname}`);
    records.push({ role: node.role, nickname: node.nickname, pid: child.pid, torrc });
    await writeProcesses(dir, records);
  }
}

/**
 * Brings up a private Tor network in `dir` and resolves when a probe client reaches 100 % bootstrap.
 * Writes `network.json` and `processes.json`. On failure or abort it stops every process it started.
 * Throws `ERR_TESTNET` if a network is already running in `dir`, `ERR_TOR_NOT_FOUND` without tor or
 * tor-gencert, `ERR_TIMEOUT` / `ERR_ABORTED` from `timeoutMs` / `signal`.
 */
export async function testnetUp(options: TestnetUpOptions): Promise<TorNetworkInfo> {
  const dir = resolve(options.dir);
  const counts = countsOf(options);
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_TESTNET_TIMEOUT_MS, 'testnet up');
  const progress = (p: TestnetProgress) => options.onProgress?.(p);
  const tools = await findTools(dir, options.torBinary);
  await prepareDir(dir);
  const records: ProcessRecord[] = [];
  try {
    progress({
      phase: 'keys',
      progress: 0,
      summary: `generating keys for ${counts.authorities} authorities`,
    });
    const plan = await planNodes(tools, dir, counts, options.ownerPid, signal);
    progress({ phase: 'launch', progress: 0, summary: `starting ${plan.nodes.length} tors` });
    await launchNodes(tools, dir, plan.nodes, records, await nodelayEnv(options.nodelay ?? true));
    const info: TorNetworkInfo = {
      dir,
      clientTorrc: clientLines(dir, plan.authorities),
      authorities: plan.authorities,
      relays: plan.relays,
    };
    if (plan.bridges.length > 0) info.bridges = await bridgeLinesOf(plan.bridges, records, signal);
    await probe(tools, dir, info, records, signal, progress);
    await writeNetwork(info);
    progress({ phase: 'done', progress: 100, summary: 'private network ready' });
    return info;
  } catch (e) {
    await testnetDown({ dir });
    if (signal.aborted) throw abortReason(signal, 'testnet up');
    throw e;
  }
}

/**
 * Stops every tor the network in `dir` started (SIGTERM, then SIGKILL) and removes `processes.json`.
 * Safe to repeat; never signals a pid that no longer runs one of our torrc files.
 */
export async function testnetDown(options: {
  dir: string;
  signal?: AbortSignal;
}): Promise<{ stopped: number }> {
  const dir = resolve(options.dir);
  const records = await readProcesses(dir);
  if (options.signal?.aborted) throw abortReason(options.signal, 'testnet down');
  const results = await Promise.all(records.map((r) => terminate(r.pid, r.torrc)));
  await rm(join(dir, PROCESSES_FILE), { force: true });
  return { stopped: results.filter(Boolean).length };
}

/** Which of the network's tors are alive; `running` is true while any recorded process is. */
export async function testnetStatus(options: { dir: string }): Promise<{
  dir: string;
  running: boolean;
  processes: TestnetProcess[];
  network?: TorNetworkInfo;
}> {
  const dir = resolve(options.dir);
  const records = await readProcesses(dir);
  const processes = await Promise.all(
    records.map(async (r) => ({
      role: r.role,
      nickname: r.nickname,
      pid: r.pid,
      alive: await isOurProcess(r.pid, r.torrc),
    })),
  );
  const network = await loadNetwork(dir).catch(() => undefined);
  return {
    dir,
    running: processes.length > 0 && processes.some((p) => p.alive),
    processes,
    ...(network ? { network } : {}),
  };
}
