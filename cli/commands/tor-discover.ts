import { callDaemon } from '../../src/agent/daemon.js';
import { SERVICE_RE } from '../../src/discovery/advertisement.js';
import { MmogitError } from '../../src/errors.js';
import { BOUNDS, parseCount, parseTimeoutMs } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
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
  args: GlobalOptions & { service: string; limit?: string; timeout?: string },
): Promise<CommandResult> {
  // Only names an advertisement can carry (lower case: `Memory_Sync` would never match one).
  if (!SERVICE_RE.test(args.service)) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `invalid service name ${JSON.stringify(args.service.slice(0, 80))}: 1–64 lower-case letters, digits or _ . - (starting with a letter or digit)`,
    );
  }
  const timeoutMs = parseTimeoutMs(args.timeout, 30);
  const limit = args.limit === undefined ? 20 : parseCount(args.limit, 'limit', BOUNDS.discoverLimit);
  const found = await callDaemon<Found[]>(
    configDirOf(args),
    'discover',
    { service: args.service, limit, timeoutMs },
    { timeoutMs: timeoutMs + 10_000, onProgress: showProgress },
  );
  endProgress();
  const sorted = [...found].sort((a, b) => new Date(b.issuedAt).getTime() - new Date(a.issuedAt).getTime());
  if (sorted.length === 0) {
    return {
      data: [],
      human: `no agent offering "${args.service}" found within ${timeoutMs / 1000} s`,
      exitCode: exitCodeFor('not-found'),
    };
  }
  return {
    data: sorted,
    human: sorted
      .map(
        (a) =>
          `${t(String(a.onion))}  ${a.services.map((s) => t(String(s))).join(',')}  (verified, expires ${t(String(a.expiresAt))})`,
      )
      .join('\n'),
  };
}
