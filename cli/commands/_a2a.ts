import { callDaemon } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import type { GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** tor's SOCKS port of the running daemon: A2A calls go through it, never directly. */
export async function daemonSocksPort(args: GlobalOptions): Promise<number> {
  const status = await callDaemon<{ socksPort: number | null }>(
    configDirOf(args),
    'status',
    {},
    { timeoutMs: 5_000 },
  );
  if (typeof status.socksPort !== 'number') {
    throw new MmogitError('ERR_DAEMON_NOT_RUNNING', 'the agent is still starting (see `mmogit tor status`)');
  }
  return status.socksPort;
}
