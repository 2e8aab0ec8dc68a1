import { callDaemon } from '../../src/agent/daemon.js';
import type { SyncPeerResult } from '../../src/agent/runtime.js';
import { MmogitError } from '../../src/errors.js';
import { parseTimeoutMs } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import { type CommandResult, endProgress, type GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeers } from './_peers.js';
import { showProgress } from './_progress.js';

type PeerSync = SyncPeerResult;

/** At most this many peers' failures are quoted in the error's message (all of them are in its details). */
const QUOTED_FAILURES = 3;

/**
 * Sync failed with every peer it tried: `ERR_SYNC` (exit 5), each peer's failure (`peer`, `code`, `message`) in
 * `details.failures`, the first few quoted in the message.
 */
function everyPeerFailed(failed: PeerSync[]): MmogitError {
  const failures = failed.map((r) => ({
    peer: r.peer,
    code: r.error?.code ?? 'ERR_SYNC',
    message: r.error?.message ?? 'sync failed',
  }));
  const quoted = failures
    .slice(0, QUOTED_FAILURES)
    .map((f) => `${f.peer}: ${f.message} (${f.code})`)
    .join('; ');
  const more = failures.length > QUOTED_FAILURES ? `; and ${failures.length - QUOTED_FAILURES} more` : '';
  const what = failures.length === 1 ? '' : ` all ${failures.length} peers:`;
  return new MmogitError('ERR_SYNC', `sync failed with${what} ${quoted}${more}`, { details: { failures } });
}

/**
 * `mmogit sync [<onion>…]` → per peer `{"peer","sent","received","head","ms","error"?}`; exit 0 when at least
 * one peer synced (the others carry `error`), `ERR_SYNC` (exit 5) when every peer failed.
 */
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
  if (failed.length > 0 && failed.length === results.length) throw everyPeerFailed(failed);
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
  };
}
