import { callDaemon } from '../../src/agent/daemon.js';
import { hasCode } from '../../src/errors.js';
import { loadIdentity } from '../../src/identity/store.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

interface Status {
  running: boolean;
  ready?: boolean;
  onion: string;
  bootstrap: number;
  socksPort: number | null;
  controlPort: number | null;
  onionPort: number | null;
  pid: number | null;
  [k: string]: unknown;
}

/** `mmogit tor status` */
export default async function torStatus(args: GlobalOptions): Promise<CommandResult> {
  const configDir = configDirOf(args);
  let status: Status;
  try {
    status = await callDaemon<Status>(configDir, 'status', {}, { timeoutMs: 5_000 });
  } catch (e) {
    if (!hasCode(e, 'ERR_DAEMON_NOT_RUNNING')) throw e;
    const key = await loadIdentity(configDir);
    status = {
      running: false,
      onion: key.onion,
      bootstrap: 0,
      socksPort: null,
      controlPort: null,
      onionPort: null,
      pid: null,
    };
  }
  const human = status.running
    ? [
        `running (pid ${status.pid})${status.ready ? '' : ' — starting'}`,
        `onion:     ${status.onion}`,
        `bootstrap: ${status.bootstrap}%`,
        `socks:     127.0.0.1:${status.socksPort ?? '-'}   control: ${status.controlPort ?? '-'}   onion port: ${status.onionPort ?? '-'}`,
      ].join('\n')
    : `not running (onion ${status.onion})`;
  return { data: status, human };
}
