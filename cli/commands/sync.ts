import { callDaemon } from '../../src/agent/daemon.js';
import type { SyncPeerResult } from '../../src/agent/runtime.js';
import { parseTimeoutMs } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import { type CommandResult, endProgress, type GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeers } from './_peers.js';
import { showProgress } from './_progress.js';

type PeerSync = SyncPeerResult;

/** `mmogit sync [<onion>…]` → per peer `{"peer","sent","received","head","ms"}` */
export default async function sync(
  args: GlobalOptions & { peers?: string[]; timeout?: string },
): Promise<CommandResult> {
  const peers = await resolvePeers(args, args.peers ?? []);
  const timeoutMs = parseTimeoutMs(args.timeout, 120);
  const results = await callDaemon<PeerSync[]>(
    configDirOf(args),
    'sync',
    { peers, timeoutMs },
    { timeoutMs: timeoutMs + 10_000, onProgress: showProgress },
  );
  endProgress();
  const failed = results.filter((r) => r.error);
  return {
    data: results,
    human:
      results.length === 0
        ? 'no peers to sync with (give an onion, or have peers advertise memory_sync)'
        : results
            .map((r) =>
              r.error
                ? `${t(r.peer)}: failed — ${t(String(r.error.message))}`
                : `${t(r.peer)}: sent ${r.sent}, received ${r.received} entries, head ${t(r.head?.slice(0, 12) ?? '-')} (${r.ms} ms)`,
            )
            .join('\n'),
    ...(failed.length > 0 && failed.length === results.length ? { exitCode: 5 } : {}),
  };
}
