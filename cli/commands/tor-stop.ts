import { stopDaemon } from '../../src/agent/daemon.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** `mmogit tor stop`: graceful (DEL_ONION, tor exits with its owner); stopping a stopped daemon is fine. */
export default async function torStop(args: GlobalOptions): Promise<CommandResult> {
  const r = await stopDaemon(configDirOf(args));
  if (!r.stopped) return { data: { stopped: false, running: false }, human: 'not running' };
  return {
    data: { stopped: true, running: false, pid: r.pid, ...(r.killed ? { killed: true } : {}) },
    human: r.killed ? 'stopped (killed after timeout)' : 'stopped',
  };
}
