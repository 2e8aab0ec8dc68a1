import { callDaemon } from '../../src/agent/daemon.js';
import { ADVERT_MAX_TTL_MS, MAX_SERVICES, SERVICE_RE } from '../../src/discovery/advertisement.js';
import { MmogitError } from '../../src/errors.js';
import { parseDuration } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf, splitList } from './_context.js';

/** `mmogit tor advertise --services memory_sync[,…] [--ttl 6h]` → the signed record as published. */
export default async function torAdvertise(
  args: GlobalOptions & { services: string; ttl?: string },
): Promise<CommandResult> {
  const services = splitList(args.services);
  if (services.length === 0)
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--services needs at least one service');
  // The names the daemon would sign (advertisement.ts): checked here, so a bad one fails with or without it.
  const bad = services.find((s) => !SERVICE_RE.test(s));
  if (bad !== undefined) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `--services: ${JSON.stringify(bad.slice(0, 80))} is not 1–64 lower-case letters, digits or _ . - (starting with a letter or digit)`,
      { details: { flag: 'services' } },
    );
  }
  if (new Set(services).size > MAX_SERVICES) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `--services names more than ${MAX_SERVICES} services`, {
      details: { flag: 'services' },
    });
  }
  // An advert lives at most ADVERT_MAX_TTL_MS (peers refuse longer ones): refuse it here, before the daemon.
  const ttlMs = parseDuration(args.ttl ?? '6h', 'ttl', { min: 1_000, max: ADVERT_MAX_TTL_MS });
  const record = await callDaemon<Record<string, unknown>>(
    configDirOf(args),
    'advertise',
    { services, ttlMs },
    { timeoutMs: 180_000 },
  );
  return {
    data: record,
    human: `advertised ${services.map(t).join(', ')} until ${t(String(record.expiresAt ?? '?'))}`,
  };
}
