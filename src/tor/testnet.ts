/**
 * The built-in private Tor network: directory authorities (keys from `tor-gencert`), optional relays and an
 * optional obfs4 bridge, all on 127.0.0.1 with `TestingTorNetwork 1`, so agents can talk with no internet.
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
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import { freePorts, isOurProcess, logTail, terminate } from './_process.js';
import { findExecutable, findTransportBinaries, torrcQuote } from './torrc.js';

/** Default number of directory authorities: 4 authorities alone make a working onion network (notes). */
export const DEFAULT_TESTNET_AUTHORITIES = 4;
/** Default number of extra relays. */
export const DEFAULT_TESTNET_RELAYS = 0;
/** How long {@link testnetUp} waits for a probe client to reach 100 % by default. */
export const DEFAULT_TESTNET_TIMEOUT_MS = 120_000;
/** Format version of `network.json`. */
export const NETWORK_FILE_VERSION = 1;

/** A directory authority of a private network. */
export interface TestnetAuthority {
  nickname: string;
  orPort: number;
  dirPort: number;
  /** v3 identity: the `fingerprint` line of its `authority_certificate`. */
  v3ident: string;
  /** Relay identity fingerprint (40 hex). */
  fingerprint: string;
}

/** A relay or bridge of a private network. */
export interface TestnetRelay {
  nickname: string;
  orPort: number;
  fingerprint: string;
}

/** What an agent needs to join a private network (`<dir>/network.json`). */
export interface TorNetworkInfo {
  /** Absolute path of the network directory. */
  dir: string;
  /** torrc lines every client on this network needs (TestingTorNetwork, DirAuthority, …). */
  clientTorrc: string[];
  authorities: TestnetAuthority[];
  relays: TestnetRelay[];
  /** `Bridge` line values of the network's obfs4 bridges (for `startTor({ useBridges, bridges })`). */
  bridges?: string[];
  /** Agents that others can bootstrap the DHT from (filled later by discovery). */
  bootstrapPeers?: string[];
}

/** One process of a running private network. */
export interface TestnetProcess {
  role: 'authority' | 'relay' | 'bridge';
  nickname: string;
  pid: number;
  alive: boolean;
}

/** Progress of {@link testnetUp}. */
export interface TestnetProgress {
  phase: 'keys' | 'launch' | 'bootstrap' | 'done';
  /** 0–100: the probe client's bootstrap progress in phase `bootstrap`. */
  progress: number;
  summary: string;
}

export interface TestnetUpOptions {
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
  onProgress?: (p: TestnetProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

interface ProcessRecord {
  role: TestnetProcess['role'];
  nickname: string;
  pid: number;
  torrc: string;
}

const NETWORK_FILE = 'network.json';
const PROCESSES_FILE = 'processes.json';
const NODES_DIR = 'nodes';
const PROBE_DIR = 'probe';
const EMPTY_FILE = 'empty';

function testnetError(message: string, details?: Record<string, unknown>, cause?: unknown): MmogitError {
  return new MmogitError('ERR_TESTNET', message, { details, cause });
}

function run(
  file: string,
  args: string[],
  input: string,
  signal: AbortSignal,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(file, args, { signal, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) {
        if (signal.aborted) reject(abortReason(signal, `${file}`));
        else
          reject(
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? new MmogitError('ERR_TOR_NOT_FOUND', `${file} not found`, { cause: err })
              : testnetError(
                  `${file} failed: ${String(stderr || stdout)
                    .trim()
                    .slice(-500)}`,
                  { file },
                  err,
                ),
          );
      } else resolvePromise({ stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(input);
  });
}

/** Lines every node and client of the network shares (see /work/shared/notes/tor-testnet.md). */
function commonLines(dir: string, authorities: TestnetAuthority[]): string[] {
  const empty = torrcQuote(join(dir, EMPTY_FILE));
  return [
    'TestingTorNetwork 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'ShutdownWaitLength 0',
    // Empty GeoIP files: ~3 s less start-up CPU and ~34 MiB less RSS per tor.
    `GeoIPFile ${empty}`,
    `GeoIPv6File ${empty}`,
    // KIST on loopback gives ~20 ms round trips, Vanilla ~1.5 ms.
    'Schedulers Vanilla',
    ...authorities.map(
      (a) =>
        `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`,
    ),
  ];
}

function clientLines(dir: string, authorities: TestnetAuthority[]): string[] {
  return [
    ...commonLines(dir, authorities),
    'TestingClientDownloadInitialDelay 0',
    'TestingClientConsensusDownloadInitialDelay 0',
  ];
}

function serverLines(
  dir: string,
  authorities: TestnetAuthority[],
  node: { nickname: string; orPort: number; dataDir: string; ownerPid?: number },
): string[] {
  return [
    ...commonLines(dir, authorities),
    `DataDirectory ${torrcQuote(node.dataDir)}`,
    `Nickname ${node.nickname}`,
    'ContactInfo mmogit-testnet',
    'Address 127.0.0.1',
    `ORPort 127.0.0.1:${node.orPort}`,
    'AssumeReachable 1',
    'SocksPort 0',
    'CookieAuthentication 1',
    'ExitRelay 0',
    'ExitPolicy reject *:*',
    'AuthDirMaxServersPerAddr 0',
    'TestingServerDownloadInitialDelay 0',
    'TestingServerConsensusDownloadInitialDelay 0',
    // stdout goes to <node>/notice.log (a `Log … file` path cannot be quoted in torrc).
    'Log notice stdout',
    ...(node.ownerPid ? [`__OwningControllerProcess ${node.ownerPid}`] : []),
  ];
}

function authorityLines(dirPort: number): string[] {
  return [
    `DirPort 127.0.0.1:${dirPort}`,
    'AuthoritativeDirectory 1',
    'V3AuthoritativeDirectory 1',
    // 10 s votes with 2 s vote and distribution delays (only valid with TestingTorNetwork).
    'TestingV3AuthInitialVotingInterval 10',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    // Without these only authorities get Stable, and onion circuits' second hop finds no node.
    'AuthDirVoteStableGuaranteeMinUptime 0',
    'AuthDirVoteStableGuaranteeMTBF 0',
  ];
}

async function relayFingerprint(
  tor: string,
  empty: string,
  dataDir: string,
  nickname: string,
  signal: AbortSignal,
) {
  // `--list-fingerprint` creates the relay keys in <dataDir>/keys and prints "<nick> XXXX XXXX …" last.
  const { stdout } = await run(
    tor,
    [
      // tor refuses /dev/null as a config file; an empty regular file keeps /etc/tor/torrc out.
      '--defaults-torrc',
      empty,
      '-f',
      empty,
      '--list-fingerprint',
      '--orport',
      '1',
      '--dirserver',
      `x 127.0.0.1:1 ${'f'.repeat(40)}`,
      '--datadirectory',
      dataDir,
      '--nickname',
      nickname,
    ],
    '',
    signal,
  );
  const last = stdout.trim().split('\n').pop() ?? '';
  const fp = last.slice(nickname.length).replace(/\s+/g, '');
  if (!last.startsWith(nickname) || !/^[0-9A-F]{40}$/.test(fp)) {
    throw testnetError(`unexpected tor --list-fingerprint output for ${nickname}`, { output: last });
  }
  return fp;
}

async function readProcesses(dir: string): Promise<ProcessRecord[]> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, PROCESSES_FILE), 'utf8')) as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (p): p is ProcessRecord =>
        typeof p === 'object' &&
        p !== null &&
        Number.isInteger((p as ProcessRecord).pid) &&
        typeof (p as ProcessRecord).torrc === 'string',
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw testnetError(`cannot read ${join(dir, PROCESSES_FILE)}`, undefined, e);
  }
}

function launch(tor: string, empty: string, torrc: string, stdoutFile: string): ChildProcess {
  const fd = openSync(stdoutFile, 'a');
  try {
    // Detached and unref'd: the network outlives `mmogit testnet up`; processes.json owns it.
    const child = spawn(tor, ['--defaults-torrc', empty, '-f', torrc], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
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
  const nAuth = options.authorities ?? DEFAULT_TESTNET_AUTHORITIES;
  const nRelay = options.relays ?? DEFAULT_TESTNET_RELAYS;
  const nBridge = options.bridges ?? 0;
  if (!Number.isInteger(nAuth) || nAuth < 1 || nAuth > 16) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'authorities must be an integer in 1..16');
  }
  if (!Number.isInteger(nRelay) || nRelay < 0 || nRelay > 32 || !Number.isInteger(nBridge) || nBridge < 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'relays must be an integer in 0..32, bridges ≥ 0');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TESTNET_TIMEOUT_MS;
  const signal = withTimeout(options.signal, timeoutMs, 'testnet up');
  const progress = (p: TestnetProgress) => options.onProgress?.(p);

  const tor = await findExecutable(options.torBinary ?? 'tor');
  if (!tor) throw new MmogitError('ERR_TOR_NOT_FOUND', `tor binary not found: ${options.torBinary ?? 'tor'}`);
  const gencert = await findExecutable('tor-gencert');
  if (!gencert) throw new MmogitError('ERR_TOR_NOT_FOUND', 'tor-gencert not found (Debian package tor)');

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

  const records: ProcessRecord[] = [];
  const saveRecords = () => writeFile(join(dir, PROCESSES_FILE), `${JSON.stringify(records, null, 2)}\n`);
  try {
    progress({ phase: 'keys', progress: 0, summary: `generating keys for ${nAuth} authorities` });
    const ports = await freePorts(nAuth * 2 + nRelay + nBridge * 2);
    const spare = ports.slice(nAuth * 2);
    // Key generation in parallel (~1 s per authority, CPU-bound).
    const authorities: TestnetAuthority[] = await Promise.all(
      Array.from({ length: nAuth }, async (_, i): Promise<TestnetAuthority> => {
        const nickname = `auth${String(i).padStart(3, '0')}`;
        const dataDir = join(dir, NODES_DIR, nickname);
        const keys = join(dataDir, 'keys');
        await mkdir(keys, { recursive: true, mode: 0o700 });
        await chmod(dataDir, 0o700);
        const orPort = ports[2 * i]!;
        const dirPort = ports[2 * i + 1]!;
        // tor-gencert(1): a new identity key, valid 12 months, empty passphrase on fd 0.
        await run(
          gencert,
          [
            '--create-identity-key',
            '-m',
            '12',
            '-a',
            `127.0.0.1:${dirPort}`,
            '-i',
            join(keys, 'authority_identity_key'),
            '-s',
            join(keys, 'authority_signing_key'),
            '-c',
            join(keys, 'authority_certificate'),
            '--passphrase-fd',
            '0',
          ],
          '\n',
          signal,
        );
        const cert = await readFile(join(keys, 'authority_certificate'), 'utf8');
        const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
        if (!v3ident) throw testnetError(`no fingerprint in ${nickname}'s authority certificate`);
        const fingerprint = await relayFingerprint(tor, join(dir, EMPTY_FILE), dataDir, nickname, signal);
        return { nickname, orPort, dirPort, v3ident, fingerprint };
      }),
    );

    type Node = { role: ProcessRecord['role']; nickname: string; dataDir: string; lines: string[] };
    const nodes: Node[] = [];
    for (const a of authorities) {
      const dataDir = join(dir, NODES_DIR, a.nickname);
      nodes.push({
        role: 'authority',
        nickname: a.nickname,
        dataDir,
        lines: [
          ...serverLines(dir, authorities, { ...a, dataDir, ownerPid: options.ownerPid }),
          ...authorityLines(a.dirPort),
        ],
      });
    }
    const relays: TestnetRelay[] = [];
    for (let i = 0; i < nRelay; i++) {
      const nickname = `relay${String(i).padStart(3, '0')}`;
      const dataDir = join(dir, NODES_DIR, nickname);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const orPort = spare.pop()!;
      const fingerprint = await relayFingerprint(tor, join(dir, EMPTY_FILE), dataDir, nickname, signal);
      relays.push({ nickname, orPort, fingerprint });
      nodes.push({
        role: 'relay',
        nickname,
        dataDir,
        lines: serverLines(dir, authorities, { nickname, orPort, dataDir, ownerPid: options.ownerPid }),
      });
    }
    const bridgeNodes: { nickname: string; dataDir: string; ptPort: number; fingerprint: string }[] = [];
    if (nBridge > 0) {
      const pt = (await findTransportBinaries(['obfs4 127.0.0.1:1'])).obfs4;
      if (!pt) throw new MmogitError('ERR_TOR_NOT_FOUND', 'obfs4proxy (or lyrebird) not found for bridges');
      for (let i = 0; i < nBridge; i++) {
        const nickname = `bridge${String(i).padStart(3, '0')}`;
        const dataDir = join(dir, NODES_DIR, nickname);
        await mkdir(dataDir, { recursive: true, mode: 0o700 });
        const orPort = spare.pop()!;
        const ptPort = spare.pop()!;
        const fingerprint = await relayFingerprint(tor, join(dir, EMPTY_FILE), dataDir, nickname, signal);
        bridgeNodes.push({ nickname, dataDir, ptPort, fingerprint });
        nodes.push({
          role: 'bridge',
          nickname,
          dataDir,
          lines: [
            ...serverLines(dir, authorities, { nickname, orPort, dataDir, ownerPid: options.ownerPid }),
            'BridgeRelay 1',
            // No bridge authority here: clients are given the bridge line directly.
            'PublishServerDescriptor 0',
            `ServerTransportPlugin obfs4 exec ${pt}`,
            `ServerTransportListenAddr obfs4 127.0.0.1:${ptPort}`,
            'ExtORPort auto',
          ],
        });
      }
    }

    progress({ phase: 'launch', progress: 0, summary: `starting ${nodes.length} tors` });
    for (const node of nodes) {
      const torrc = join(node.dataDir, 'torrc');
      await writeFile(torrc, `${node.lines.join('\n')}\n`);
      const child = launch(tor, join(dir, EMPTY_FILE), torrc, join(node.dataDir, 'notice.log'));
      if (child.pid === undefined) throw testnetError(`could not start tor for ${node.nickname}`);
      records.push({ role: node.role, nickname: node.nickname, pid: child.pid, torrc });
      await saveRecords();
    }

    const info: TorNetworkInfo = {
      dir,
      clientTorrc: clientLines(dir, authorities),
      authorities,
      relays,
    };
    if (bridgeNodes.length > 0) info.bridges = await bridgeLinesOf(bridgeNodes, records, signal);

    await probe(tor, dir, info, records, signal, progress);
    await writeFile(
      join(dir, NETWORK_FILE),
      `${JSON.stringify({ version: NETWORK_FILE_VERSION, ...info }, null, 2)}\n`,
    );
    progress({ phase: 'done', progress: 100, summary: 'private network ready' });
    return info;
  } catch (e) {
    await testnetDown({ dir });
    if (signal.aborted) throw abortReason(signal, 'testnet up');
    throw e;
  }
}

/** obfs4proxy writes `Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=… iat-mode=0` once it runs. */
async function bridgeLinesOf(
  bridges: { nickname: string; dataDir: string; ptPort: number; fingerprint: string }[],
  records: ProcessRecord[],
  signal: AbortSignal,
): Promise<string[]> {
  const lines: string[] = [];
  for (const b of bridges) {
    const file = join(b.dataDir, 'pt_state', 'obfs4_bridgeline.txt');
    for (;;) {
      if (signal.aborted) throw abortReason(signal, 'testnet up: waiting for the obfs4 bridge line');
      const text = await readFile(file, 'utf8').catch(() => '');
      const m = /^Bridge obfs4 .*?(cert=\S+ iat-mode=\d)/m.exec(text);
      if (m) {
        lines.push(`obfs4 127.0.0.1:${b.ptPort} ${b.fingerprint} ${m[1]}`);
        break;
      }
      await checkAlive(records);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return lines;
}

async function checkAlive(records: ProcessRecord[]): Promise<void> {
  for (const r of records) {
    if (!(await isOurProcess(r.pid, r.torrc))) {
      const log = await logTail(join(r.torrc, '..', 'notice.log'));
      throw testnetError(`tor for ${r.nickname} exited during start-up:\n${log}`, { nickname: r.nickname });
    }
  }
}

/** Starts a throwaway client on the network and waits until it reports `Bootstrapped 100%`. */
async function probe(
  tor: string,
  dir: string,
  info: TorNetworkInfo,
  records: ProcessRecord[],
  signal: AbortSignal,
  progress: (p: TestnetProgress) => void,
): Promise<void> {
  const dataDir = join(dir, PROBE_DIR);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const torrc = join(dataDir, 'torrc');
  await writeFile(
    torrc,
    `${[
      ...info.clientTorrc,
      `DataDirectory ${torrcQuote(dataDir)}`,
      'SocksPort 0',
      'ClientOnly 1',
      'Log notice stdout',
      `__OwningControllerProcess ${process.pid}`,
    ].join('\n')}\n`,
  );
  const child = spawn(tor, ['--defaults-torrc', join(dir, EMPTY_FILE), '-f', torrc], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setInterval(() => {
        checkAlive(records).catch(fail);
      }, 500);
      const done = () => {
        clearInterval(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (e: unknown) => {
        done();
        reject(e);
      };
      const onAbort = () => fail(abortReason(signal, 'testnet up: waiting for a client to bootstrap'));
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      child.once('error', fail);
      child.once('exit', (code) =>
        fail(testnetError(`probe tor exited (${code}):\n${output.split('\n').slice(-15).join('\n')}`)),
      );
      child.stdout!.setEncoding('utf8');
      let pending = '';
      child.stdout!.on('data', (chunk: string) => {
        output = (output + chunk).slice(-20_000);
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const m = /Bootstrapped (\d+)% \(([^)]*)\): (.*)$/.exec(line);
          if (!m) continue;
          const pct = Number(m[1]);
          progress({ phase: 'bootstrap', progress: pct, summary: m[3]! });
          if (pct === 100) {
            done();
            resolvePromise();
          }
        }
      });
    });
  } finally {
    child.removeAllListeners('exit');
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
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
  let network: TorNetworkInfo | undefined;
  try {
    network = await loadNetwork(dir);
  } catch {
    network = undefined;
  }
  return {
    dir,
    running: processes.length > 0 && processes.some((p) => p.alive),
    processes,
    ...(network ? { network } : {}),
  };
}

/**
 * Reads `<dir>/network.json` (written by {@link testnetUp}, or by hand for another private network).
 * Throws `ERR_NETWORK_CONFIG` when it is missing or malformed.
 */
export async function loadNetwork(dir: string): Promise<TorNetworkInfo> {
  const abs = resolve(dir);
  const file = join(abs, NETWORK_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `cannot read ${file}`, { cause: e, details: { file } });
  }
  const bad = (why: string) =>
    new MmogitError('ERR_NETWORK_CONFIG', `${file}: ${why}`, { details: { file } });
  if (typeof parsed !== 'object' || parsed === null) throw bad('not a JSON object');
  const o = parsed as Record<string, unknown>;
  if (o.version !== NETWORK_FILE_VERSION) throw bad(`unsupported version ${String(o.version)}`);
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (!isStrings(o.clientTorrc) || o.clientTorrc.some((l) => /[\r\n\0]/.test(l))) {
    throw bad('clientTorrc must be a list of single-line strings');
  }
  if (!o.clientTorrc.some((l) => /^DirAuthority\s/.test(l)))
    throw bad('clientTorrc has no DirAuthority line');
  if (!Array.isArray(o.authorities)) throw bad('authorities must be a list');
  if (o.bridges !== undefined && !isStrings(o.bridges)) throw bad('bridges must be a list of strings');
  if (o.bootstrapPeers !== undefined && !isStrings(o.bootstrapPeers)) {
    throw bad('bootstrapPeers must be a list of strings');
  }
  return {
    dir: abs,
    clientTorrc: o.clientTorrc,
    authorities: o.authorities as TestnetAuthority[],
    relays: Array.isArray(o.relays) ? (o.relays as TestnetRelay[]) : [],
    ...(o.bridges ? { bridges: o.bridges as string[] } : {}),
    ...(o.bootstrapPeers ? { bootstrapPeers: o.bootstrapPeers as string[] } : {}),
  };
}
