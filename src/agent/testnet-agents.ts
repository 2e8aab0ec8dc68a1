import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../_fs.js';
import { hasCode } from '../errors.js';
import type { TorNetworkInfo } from '../tor/testnet.js';
import { Agent } from './agent.js';
import { daemonRunning, spawnDaemon, stopDaemon } from './daemon.js';
import type { AgentProgress } from './runtime.js';

/**
 * The private network's DHT bootstrap agents (so agents started with `--network DIR` find each other
 * with no other flag). `mmogit testnet up` starts them as ordinary agent daemons under `<dir>/agents/` and lists
 * their `/onion3/…/p2p/…` multiaddrs in `network.json`; `testnet down` stops them.
 */

export const BOOTSTRAP_AGENT_COUNT = 1;
const AGENTS_DIR = 'agents';

function agentDirs(dir: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => join(dir, AGENTS_DIR, `bootstrap-${i + 1}`));
}

/** Starts the bootstrap agents (creating their identities once) and records them in network.json. */
export async function startBootstrapAgents(
  dir: string,
  options: {
    count?: number;
    /** `--metrics` for the first bootstrap agent's daemon (its Prometheus endpoint). */
    metrics?: string;
    onProgress?: (p: AgentProgress) => void;
    signal?: AbortSignal;
  } = {},
): Promise<TorNetworkInfo> {
  const { loadNetwork } = await import('../tor/testnet.js');
  const { onionMultiaddr, peerIdFromOnion, DEFAULT_ONION_VIRTUAL_PORT } = await import(
    '../transport/addr.js'
  );
  const peers: string[] = [];
  for (const [i, configDir] of agentDirs(dir, options.count ?? BOOTSTRAP_AGENT_COUNT).entries()) {
    const agent = await Agent.open({ configDir }).catch(async (e) => {
      if (!hasCode(e, 'ERR_CONFIG_DIR_MISSING') && !hasCode(e, 'ERR_IDENTITY_MISSING')) throw e;
      return (await Agent.init({ configDir })).agent;
    });
    await agent.close();
    if (!(await daemonRunning(configDir))) {
      await spawnDaemon({
        configDir,
        // A bootstrap agent is the DHT's entry point; it must not wait for itself.
        args: [
          '--network',
          dir,
          '--no-network-bootstrap',
          ...(i === 0 && options.metrics !== undefined ? ['--metrics', options.metrics] : []),
        ],
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
    peers.push(
      onionMultiaddr(
        agent.address,
        DEFAULT_ONION_VIRTUAL_PORT,
        peerIdFromOnion(agent.address).toString(),
      ).toString(),
    );
  }
  const file = join(dir, 'network.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  json.bootstrapPeers = peers;
  await writeFileDurable(file, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o644 });
  return loadNetwork(dir);
}

/** Stops the bootstrap agents' daemons; returns how many were running. Safe to repeat. */
export async function stopBootstrapAgents(dir: string): Promise<number> {
  let stopped = 0;
  for (const configDir of agentDirs(dir, BOOTSTRAP_AGENT_COUNT)) {
    if ((await stopDaemon(configDir, { timeoutMs: 10_000 })).stopped) stopped++;
  }
  return stopped;
}
