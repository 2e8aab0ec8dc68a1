/**
 * `network.json`: what a client needs to join a private Tor network, written by `testnetUp` and read by every
 * tor started with `--network DIR`. Reading it checks every field, since the file may be written by hand.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileDurable } from '../_fs.js';
import { describeValue, MmogitError } from '../errors.js';

/** Format version of `network.json`. */
export const NETWORK_FILE_VERSION = 1;
export const NETWORK_FILE = 'network.json';

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

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isPort = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function isRelay(v: unknown): v is TestnetRelay {
  return (
    isRecord(v) && typeof v.nickname === 'string' && isPort(v.orPort) && typeof v.fingerprint === 'string'
  );
}

function isAuthority(v: unknown): v is TestnetAuthority {
  return isRelay(v) && isRecord(v) && isPort(v.dirPort) && typeof v.v3ident === 'string';
}

/** Writes `<info.dir>/network.json` durably (mode 0644: clients of other users may read it). */
export async function writeNetwork(info: TorNetworkInfo): Promise<void> {
  await writeFileDurable(
    join(info.dir, NETWORK_FILE),
    `${JSON.stringify({ version: NETWORK_FILE_VERSION, ...info }, null, 2)}\n`,
    { mode: 0o644 },
  );
}

/**
 * Reads `<dir>/network.json` (written by `testnetUp`, or by hand for another private network).
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
  if (!isRecord(parsed)) throw bad('not a JSON object');
  const o = parsed;
  if (o.version !== NETWORK_FILE_VERSION) throw bad(`unsupported version ${describeValue(o.version)}`);
  if (!isStrings(o.clientTorrc) || o.clientTorrc.some((l) => /[\r\n\0]/.test(l))) {
    throw bad('clientTorrc must be a list of single-line strings');
  }
  if (!o.clientTorrc.some((l) => /^DirAuthority\s/.test(l)))
    throw bad('clientTorrc has no DirAuthority line');
  if (!Array.isArray(o.authorities) || !o.authorities.every(isAuthority)) {
    throw bad('authorities must be a list of { nickname, orPort, dirPort, v3ident, fingerprint }');
  }
  if (o.relays !== undefined && !(Array.isArray(o.relays) && o.relays.every(isRelay))) {
    throw bad('relays must be a list of { nickname, orPort, fingerprint }');
  }
  if (o.bridges !== undefined && !isStrings(o.bridges)) throw bad('bridges must be a list of strings');
  if (o.bootstrapPeers !== undefined && !isStrings(o.bootstrapPeers)) {
    throw bad('bootstrapPeers must be a list of strings');
  }
  return {
    dir: abs,
    clientTorrc: o.clientTorrc,
    authorities: o.authorities,
    relays: Array.isArray(o.relays) ? o.relays : [],
    ...(o.bridges ? { bridges: o.bridges } : {}),
    ...(o.bootstrapPeers ? { bootstrapPeers: o.bootstrapPeers } : {}),
  };
}
