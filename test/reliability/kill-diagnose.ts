// What the kill -9 tests print when a restarted daemon's onion stays unreachable to its peer, so one failed run
// says which side is at fault: the descriptor each tor holds for the onion (its revision counter and
// introduction points: rend-spec-v3 §2.4, control-spec GETINFO `hs/client/desc/id/…`, `hs/service/desc/id/…`),
// a raw SOCKS connect through the peer's tor on fresh circuits, the tors still running on the daemon's data
// directory, and the peer's queued messages with their last errors.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logTail } from '../../src/tor/_process.js';
import { TorController } from '../../src/tor/control/index.js';
import { reachable } from './_helpers.js';

/** A tor's control port and its cookie file (its DataDirectory's `control_auth_cookie`). */
export interface TorAccess {
  controlPort: number;
  dataDir: string;
}

/** pids of running tors whose command line names `<dataDir>/torrc` (what SpawnedTor starts). */
export async function torsOf(dataDir: string): Promise<number[]> {
  const torrc = join(dataDir, 'torrc');
  const pids: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(torrc)) pids.push(Number(name));
  }
  return pids;
}

/** A controller on `tor`, authenticated with its cookie; the caller closes it. */
async function control(tor: TorAccess): Promise<TorController> {
  const ctl = await TorController.connect({ host: '127.0.0.1', port: tor.controlPort }, { timeoutMs: 5_000 });
  try {
    await ctl.authenticate({ cookieFile: join(tor.dataDir, 'control_auth_cookie'), timeoutMs: 5_000 });
    return ctl;
  } catch (e) {
    await ctl.close().catch(() => {});
    throw e;
  }
}

/**
 * Adds an info-level log of tor's onion-service and directory domains (tor(1), `Log [domain]severity file`) to
 * `file`, keeping the notices on stdout that SpawnedTor reads. Diagnostics only; never throws.
 */
export async function addRendLog(tor: TorAccess, file: string): Promise<void> {
  let ctl: TorController | undefined;
  try {
    ctl = await control(tor);
    await ctl.request(`SETCONF Log="notice stdout" Log="[rend,dir,circ]info file ${file}"`, {
      timeoutMs: 5_000,
    });
  } catch (e) {
    process.stderr.write(`[kill] could not add tor's rend log ${file}: ${(e as Error).message}\n`);
  } finally {
    await ctl?.close().catch(() => {});
  }
}

/** The `revision-counter` and lifetime of the descriptor a GETINFO returns (its outer, plaintext part), or why none. */
async function descriptorOf(tor: TorAccess, key: string): Promise<string> {
  let ctl: TorController | undefined;
  try {
    ctl = await control(tor);
    const text = await ctl.getInfo(key, { timeoutMs: 5_000 });
    const rev = /^revision-counter (\d+)$/m.exec(text)?.[1] ?? '?';
    const lifetime = /^descriptor-lifetime (\d+)$/m.exec(text)?.[1] ?? '?';
    return `revision-counter ${rev}, lifetime ${lifetime} min, ${text.length} bytes`;
  } catch (e) {
    return `none (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
  } finally {
    await ctl?.close().catch(() => {});
  }
}

/** One multi-line report of why `serviceId` may be unreachable from the client tor. */
export async function diagnoseOnion(args: {
  serviceId: string;
  onionPort: number;
  service: TorAccess | undefined;
  client: TorAccess & { socksPort: number };
  queued: { id: string; attempts: number; lastError?: { code: string; message: string } }[];
}): Promise<string> {
  const { serviceId, service, client } = args;
  const lines = [
    `service tor's own descriptor: ${service ? await descriptorOf(service, `hs/service/desc/id/${serviceId}`) : 'no service tor'}`,
    `client tor's cached descriptor: ${await descriptorOf(client, `hs/client/desc/id/${serviceId}`)}`,
    `raw SOCKS connect through the client tor (fresh circuits, 30 s): ${(await reachable(client.socksPort, `${serviceId}.onion`, args.onionPort, 30_000)) ? 'ok' : 'failed'}`,
    `client tor's cached descriptor after it: ${await descriptorOf(client, `hs/client/desc/id/${serviceId}`)}`,
    ...(service
      ? [`tors on the service's data dir: ${(await torsOf(service.dataDir)).join(', ') || 'none'}`]
      : []),
    `service tor's notices (tail):\n${service ? await logTail(join(service.dataDir, 'notice.log'), 12) : ''}`,
    `client tor's notices (tail):\n${await logTail(join(client.dataDir, 'notice.log'), 12)}`,
    ...args.queued
      .slice(0, 5)
      .map(
        (q) => `queued ${q.id}: ${q.attempts} attempts, last ${q.lastError?.code} ${q.lastError?.message}`,
      ),
  ];
  return lines.join('\n');
}
