import { callDaemon } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf, splitList } from './_context.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "90s", "30m", "6h", "1d" into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  if (!m) throw new MmogitError('ERR_INVALID_ARGUMENT', `invalid duration "${text}" (use e.g. 30m, 6h, 1d)`);
  return Math.round(Number(m[1]) * (UNITS[m[2] as string] as number));
}

/** `mmogit tor advertise --services memory_sync[,…] [--ttl 6h]` → the signed record as published. */
export default async function torAdvertise(
  args: GlobalOptions & { services: string; ttl?: string },
): Promise<CommandResult> {
  const services = splitList(args.services);
  if (services.length === 0)
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--services needs at least one service');
  const ttlMs = parseDuration(args.ttl ?? '6h');
  const record = await callDaemon<Record<string, unknown>>(
    configDirOf(args),
    'advertise',
    { services, ttlMs },
    { timeoutMs: 180_000 },
  );
  return {
    data: record,
    human: `advertised ${services.join(', ')} until ${String(record.expiresAt ?? '?')}`,
  };
}
