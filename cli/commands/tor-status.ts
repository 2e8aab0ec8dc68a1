import { callDaemon } from '../../src/agent/daemon.js';
import type { SupervisorStatus } from '../../src/agent/supervisor.js';
import { hasCode } from '../../src/errors.js';
import { loadIdentity } from '../../src/identity/store.js';
import { terminalSafe as t } from '../_terminal-safe.js';
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
  health?: SupervisorStatus | null;
  metrics?: string | null;
  [k: string]: unknown;
}

/** The supervisor's view in two lines: tor's state, and the onion's last self-probe. */
export function healthLines(h: SupervisorStatus): string[] {
  const tor =
    h.state === 'waiting' && h.waiting
      ? `waiting for tor at ${h.waiting.control} since ${h.since} (attempt ${h.waiting.attempts}${h.waiting.error ? `: ${h.waiting.error}` : ''})`
      : `${h.state} since ${h.since}${h.restarts ? ` (restarts ${h.restarts}` + (h.lastRecovery ? `, last recovery ${(h.lastRecovery.ms / 1000).toFixed(1)} s)` : ')') : ''}`;
  const p = h.lastProbe;
  const probe = !p
    ? `none yet${h.nextProbeAt ? ` (first at ${h.nextProbeAt})` : ''}`
    : p.ok
      ? `reachable, ${(p.ms / 1000).toFixed(1)} s, at ${p.time}`
      : `FAILED at ${p.stage ?? 'probe'} (${p.error?.code ?? 'ERR_INTERNAL'}: ${p.error?.message ?? ''}), at ${p.time}` +
        (h.consecutiveFailures ? `, ${h.consecutiveFailures} in a row` : '');
  return [
    `tor:       ${tor}`,
    `probe:     ${probe}${p && h.nextProbeAt ? `; next ${h.nextProbeAt}` : ''}${h.republishes ? `; re-published ${h.republishes}×` : ''}`,
  ];
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
      // Every key docs/cli.md lists, as a running daemon gives them: no health to report, no metrics endpoint.
      health: null,
      metrics: null,
    };
  }
  const human = status.running
    ? [
        `running (pid ${t(String(status.pid))})${status.ready ? '' : ' — starting'}`,
        `onion:     ${t(String(status.onion))}`,
        `bootstrap: ${t(String(status.bootstrap))}%`,
        `socks:     127.0.0.1:${t(String(status.socksPort ?? '-'))}   control: ${t(String(status.controlPort ?? '-'))}   onion port: ${t(String(status.onionPort ?? '-'))}`,
        ...(status.health ? healthLines(status.health).map((line) => t(line)) : []),
        ...(status.metrics ? [`metrics:   ${t(String(status.metrics))}`] : []),
      ].join('\n')
    : `not running (onion ${t(String(status.onion))})`;
  return { data: status, human };
}
