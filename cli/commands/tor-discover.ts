import { callDaemon } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import { exitCodeFor } from '../exit-codes.js';
import { type CommandResult, endProgress, type GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';
import { showProgress } from './_progress.js';

interface Found {
  onion: string;
  pubkey: string;
  services: string[];
  issuedAt: string | number;
  expiresAt: string | number;
  verified: true;
}

/** `mmogit tor discover <service>` → verified advertisements, newest first. */
export default async function torDiscover(
  args: GlobalOptions & { service: string; limit?: number; timeout?: number },
): Promise<CommandResult> {
  if (!/^[a-z0-9_.-]{1,64}$/i.test(args.service)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `invalid service name "${args.service}"`);
  }
  const timeoutMs = (args.timeout ?? 30) * 1000;
  const found = await callDaemon<Found[]>(
    configDirOf(args),
    'discover',
    { service: args.service, limit: args.limit ?? 20, timeoutMs },
    { timeoutMs: timeoutMs + 10_000, onProgress: showProgress },
  );
  endProgress();
  const sorted = [...found].sort((a, b) => new Date(b.issuedAt).getTime() - new Date(a.issuedAt).getTime());
  if (sorted.length === 0) {
    return {
      data: [],
      human: `no agent offering "${args.service}" found within ${args.timeout ?? 30} s`,
      exitCode: exitCodeFor('not-found'),
    };
  }
  return {
    data: sorted,
    human: sorted
      .map((a) => `${a.onion}  ${a.services.join(',')}  (verified, expires ${a.expiresAt})`)
      .join('\n'),
  };
}
