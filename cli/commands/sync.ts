import { callDaemon } from '../../src/agent/daemon.js';
import type { SyncPeerResult } from '../../src/agent/runtime.js';
import { parseOnionAddress } from '../../src/identity/onion.js';
import { type CommandResult, endProgress, type GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { showProgress } from './_progress.js';

type PeerSync = SyncPeerResult;

/** `mmogit sync [<onion>…]` → per peer `{"peer","sent","received","head","ms"}` */
export default async function sync(
  args: GlobalOptions & { peers?: string[]; timeout?: number },
): Promise<CommandResult> {
  const peers = (args.peers ?? []).map((p) => parseOnionAddress(p).hostname);
  const timeoutMs = (args.timeout ?? 120) * 1000;
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
                ? `${r.peer}: failed — ${r.error.message}`
                : `${r.peer}: sent ${r.sent}, received ${r.received} entries, head ${r.head?.slice(0, 12) ?? '-'} (${r.ms} ms)`,
            )
            .join('\n'),
    ...(failed.length > 0 && failed.length === results.length ? { exitCode: 5 } : {}),
  };
}
