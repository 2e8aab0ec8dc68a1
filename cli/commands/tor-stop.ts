import { callDaemon, daemonRunning } from '../../src/agent/daemon.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

const STOP_WAIT_MS = 30_000;

/** `mmogit tor stop`: graceful (DEL_ONION, tor exits with its owner); stopping a stopped daemon is fine. */
export default async function torStop(args: GlobalOptions): Promise<CommandResult> {
  const configDir = configDirOf(args);
  if (!(await daemonRunning(configDir))) {
    return { data: { stopped: false, running: false }, human: 'not running' };
  }
  const { pid } = await callDaemon<{ pid: number }>(configDir, 'ping');
  await callDaemon(configDir, 'stop');
  // Wait (bounded) for the process to be gone, so `tor start` right after works.
  const deadline = Date.now() + STOP_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return { data: { stopped: true, running: false, pid }, human: 'stopped' };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(pid, 'SIGKILL');
  return {
    data: { stopped: true, running: false, pid, killed: true },
    human: 'stopped (killed after timeout)',
  };
}
