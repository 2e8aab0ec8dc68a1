/**
 * `<configDir>/config.json`: read, checked, and merged with the start options.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeValue, MmogitError } from '../errors.js';
import { CONFIG_FILES } from '../identity/store.js';
import { TRANSPORT_POLICIES, type TransportPolicy } from '../transport/hybrid.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { AgentConfig } from './runtime-types.js';

function isPolicy(x: unknown): x is TransportPolicy {
  return typeof x === 'string' && (TRANSPORT_POLICIES as readonly string[]).includes(x);
}

/** Reads `<configDir>/config.json`; a missing file is an empty config, a malformed one a typed error. */
export async function loadAgentConfig(configDir: string): Promise<AgentConfig> {
  const path = join(configDir, CONFIG_FILES.config);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path} is not valid JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path} must hold a JSON object`);
  }
  const c: AgentConfig = parsed;
  if (c.policy !== undefined && !isPolicy(c.policy)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: unknown policy ${describeValue(c.policy)}`);
  }
  const hooks: unknown = c.hooks;
  if (
    hooks !== undefined &&
    hooks !== false &&
    (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks))
  ) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: "hooks" must be false or an object`);
  }
  const maxFileBytes: unknown = c.maxFileBytes;
  if (maxFileBytes !== undefined && !(Number.isSafeInteger(maxFileBytes) && (maxFileBytes as number) >= 0)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: "maxFileBytes" must be a non-negative integer`);
  }
  const partialAge: unknown = c.filePartialMaxAgeMs;
  if (partialAge !== undefined && !(Number.isSafeInteger(partialAge) && (partialAge as number) > 0)) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: "filePartialMaxAgeMs" must be a positive integer`);
  }
  const rate: unknown = c.inboundRate;
  if (rate !== undefined && !isRate(rate)) {
    throw new MmogitError(
      'ERR_NETWORK_CONFIG',
      `${path}: "inboundRate" must be {"capacity": integer >= 1, "refillPerSecond": number > 0}`,
    );
  }
  return c;
}

/** A token bucket's settings as src/agent/rate-limit.ts's `TokenBucket` accepts them (a finite, positive sustained rate). */
function isRate(x: unknown): x is RateLimitOptions {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const { capacity, refillPerSecond } = x as Record<string, unknown>;
  return (
    Number.isSafeInteger(capacity) &&
    (capacity as number) >= 1 &&
    typeof refillPerSecond === 'number' &&
    Number.isFinite(refillPerSecond) &&
    refillPerSecond > 0
  );
}

/** A policy given as an option, checked; `undefined` when none was given. */
export function checkPolicy(policy: string | undefined): TransportPolicy | undefined {
  if (policy === undefined) return undefined;
  if (!isPolicy(policy)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `unknown transport policy "${policy}"`, {
      details: { allowed: TRANSPORT_POLICIES },
    });
  }
  return policy;
}
