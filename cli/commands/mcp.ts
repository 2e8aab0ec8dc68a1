import { readFileSync } from 'node:fs';
import { daemonRunning, spawnDaemon } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import { daemonLink } from '../../src/mcp/daemon-link.js';
import { claimStdout, serveMcpStdio } from '../../src/mcp/stdio.js';
import { loadNetwork } from '../../src/tor/testnet-network.js';
import { type CommandResult, endProgress, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { showProgress } from './_progress.js';
import { daemonArgs } from './tor-start.js';

interface McpArgs extends GlobalOptions {
  start?: boolean;
  network?: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * `mmogit mcp [--start]`: the agent as an MCP server on stdin/stdout, for an MCP host to spawn. stdout carries
 * MCP frames only (claimed before anything else runs); notes and progress go to stderr.
 */
export default async function mcp(args: McpArgs): Promise<CommandResult> {
  claimStdout();
  const configDir = configDirOf(args);
  const link = daemonLink(configDir);
  await link.identity(); // a missing identity is a start-up error, not a failure of every tool
  if (args.network !== undefined && !args.start) {
    // It is the network of the daemon --start starts: alone it did nothing.
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--network goes with --start', {
      details: { flag: 'network' },
    });
  }
  if (args.start && !(await daemonRunning(configDir))) {
    const network = args.network ?? process.env.MMOGIT_TOR_NETWORK;
    if (network) await loadNetwork(network); // ERR_NETWORK_CONFIG before a daemon is spawned, as tor start does
    note(`mmogit mcp: starting the agent daemon for ${configDir}`);
    const state = await spawnDaemon({
      configDir,
      args: daemonArgs({
        ...(args.network ? { network: args.network } : {}),
        verbose: args.verbose ?? false,
      }),
      onProgress: (p) => showProgress(p),
    });
    endProgress();
    note(`mmogit mcp: daemon ${state.pid} up as ${state.onion}`);
  }
  await serveMcpStdio({ link, version: packageVersion() });
  return { data: null, printed: true };
}
