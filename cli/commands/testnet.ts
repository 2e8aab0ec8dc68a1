import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MmogitError } from '../../src/errors.js';
import type { TorNetworkInfo } from '../../src/tor/testnet.js';
import { BOUNDS, parseCount } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import { type CommandResult, endProgress, type GlobalOptions, progress } from '../output.js';
import { configDirOf } from './_context.js';
import { showProgress } from './_progress.js';

interface TestnetArgs extends GlobalOptions {
  _: (string | number)[];
  dir?: string;
  authorities?: string;
  relays?: string;
  metrics?: string;
}

/**
 * A network dir that is a file (or lies under one) is the caller's to fix: ERR_NETWORK_CONFIG, exit 3, before
 * anything runs (`up` failed with ERR_INTERNAL "EEXIST: mkdir", `status` and `down` with ERR_TESTNET "cannot read
 * processes.json"). A missing one is fine: `up` creates it, `status` and `down` find nothing there.
 */
async function checkDir(dir: string): Promise<void> {
  const notADir = () =>
    new MmogitError('ERR_NETWORK_CONFIG', `network dir ${dir} is not a directory`, { details: { dir } });
  const s = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOTDIR') throw notADir();
    return null;
  });
  if (s && !s.isDirectory()) throw notADir();
}

/** `mmogit testnet up|down|status [--dir DIR]`: the built-in private Tor network on loopback. */
export default async function testnet(args: TestnetArgs): Promise<CommandResult> {
  const sub = String(args._[1] ?? '');
  const dir = args.dir ?? join(configDirOf(args), 'testnet');
  await checkDir(dir);
  const { testnetUp, testnetDown, testnetStatus } = await import('../../src/tor/testnet.js');
  const { startBootstrapAgents, stopBootstrapAgents } = await import('../../src/agent/testnet-agents.js');
  if (sub === 'up') {
    const authorities =
      args.authorities === undefined
        ? undefined
        : parseCount(args.authorities, 'authorities', BOUNDS.authorities);
    const relays = args.relays === undefined ? undefined : parseCount(args.relays, 'relays', BOUNDS.relays);
    if (args.metrics !== undefined) {
      const { checkMetricsFlag } = await import('./tor-start.js');
      await checkMetricsFlag(args.metrics);
    }
    const started = Date.now();
    const network: TorNetworkInfo = await testnetUp({
      dir,
      ...(authorities !== undefined ? { authorities } : {}),
      ...(relays !== undefined ? { relays } : {}),
      onProgress: (p) => progress(`testnet ${p.phase}: ${p.progress}% ${p.summary}`),
    });
    endProgress();
    progress('testnet: starting the DHT bootstrap agent…');
    const withPeers = await startBootstrapAgents(dir, {
      ...(args.metrics !== undefined ? { metrics: args.metrics } : {}),
      onProgress: (p) => showProgress(p),
    });
    endProgress();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    return {
      data: { ...withPeers, upSeconds: Number(seconds) },
      human: [
        `private Tor network up in ${seconds} s: ${network.authorities.length} authorities, ${network.relays.length} relays`,
        `dir: ${dir}`,
        `bootstrap agents: ${(withPeers.bootstrapPeers ?? []).length}`,
        ...(args.metrics !== undefined
          ? [`bootstrap agent metrics: --metrics ${args.metrics} (/metrics)`]
          : []),
        `use it with: mmogit tor start --network ${dir}   (or MMOGIT_TOR_NETWORK=${dir})`,
      ].join('\n'),
    };
  }
  if (sub === 'down') {
    const agents = await stopBootstrapAgents(dir);
    const r = await testnetDown({ dir });
    return { data: { ...r, agents }, human: `stopped ${r.stopped} tor process(es) and ${agents} agent(s)` };
  }
  const s = await testnetStatus({ dir });
  return {
    data: s,
    human: [
      `${s.running ? 'running' : 'not running'}: ${s.dir}`,
      ...s.processes.map(
        (p) =>
          `  ${t(String(p.role)).padEnd(9)} ${t(String(p.nickname)).padEnd(12)} pid ${t(String(p.pid))} ${p.alive ? 'alive' : 'dead'}`,
      ),
    ].join('\n'),
  };
}
