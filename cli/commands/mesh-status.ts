import { ipcCall } from '../../src/agent/ipc.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { meshRunning, meshSocket } from './_mesh.js';

/** `mmogit mesh status`: what this config dir's mesh process is doing (relay circuits, or client legs). */
export default async function meshStatus(args: GlobalOptions): Promise<CommandResult> {
  const configDir = configDirOf(args);
  if (!(await meshRunning(configDir)))
    return { data: { running: false }, human: 'no mesh process', exitCode: 0 };
  const s = await ipcCall<Record<string, unknown>>(meshSocket(configDir), 'status');
  const human =
    s.mode === 'relay'
      ? `relay ${s.relay} — ${s.circuits} circuit(s), ${s.links} link(s); exits: ${(s.exits as string[]).join(', ')}`
      : `socks ${s.socks} — ${(s.circuits as unknown[]).length} leg(s), ${s.hops} hops`;
  return { data: { running: true, ...s }, human };
}
