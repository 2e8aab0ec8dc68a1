/**
 * `<configDir>/config.json`: read, checked, and merged with the start options.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmogitError } from '../errors.js';
import { CONFIG_FILES } from '../identity/store.js';
import { TRANSPORT_POLICIES, type TransportPolicy } from '../transport/hybrid.js';
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
    throw new MmogitError('ERR_NETWORK_CONFIG', `${path}: unknown policy "${String(c.policy)}"`);
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
  return c;
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
