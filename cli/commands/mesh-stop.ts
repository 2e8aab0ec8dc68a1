import { ipcCall } from '../../src/agent/ipc.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { meshRunning, meshSocket } from './_mesh.js';

/** `mmogit mesh stop`: stops this config dir's mesh process (relay or SOCKS); stopping none is fine. */
export default async function meshStop(args: GlobalOptions): Promise<CommandResult> {
  const configDir = configDirOf(args);
  if (!(await meshRunning(configDir)))
    return { data: { stopped: false, running: false }, human: 'not running' };
  const { pid } = await ipcCall<{ pid: number }>(meshSocket(configDir), 'stop');
  const deadline = Date.now() + 30_000;
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
