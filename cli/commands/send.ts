import { callDaemon } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import { parseOnionAddress } from '../../src/identity/onion.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** `mmogit send <onion> <text>` → `{"id":…,"status":"delivered"|"queued"}` */
export default async function send(
  args: GlobalOptions & { onion: string; text?: string },
): Promise<CommandResult> {
  const onion = parseOnionAddress(args.onion).hostname;
  if (typeof args.text !== 'string' || args.text.length === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'message text is empty');
  }
  const r = await callDaemon<{ id: string; status: 'delivered' | 'queued' }>(
    configDirOf(args),
    'send',
    { onion, text: args.text },
    { timeoutMs: 120_000 },
  );
  return {
    data: r,
    human:
      r.status === 'delivered' ? `delivered (${r.id})` : `queued (${r.id}): will retry while the daemon runs`,
  };
}
