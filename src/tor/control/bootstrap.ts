/**
 * Tor's bootstrap progress (control-spec §4.1.10): the status type, the options of waiting for it, and the
 * pure parsers of `GETINFO status/bootstrap-phase` and `STATUS_CLIENT … BOOTSTRAP` arguments.
 * @module
 */
import type { AbortOptions } from '../../_async.js';
import { splitArgs } from './_strings.js';
import { clip, TorControlError } from './errors.js';

/** Default time to wait for tor to reach 100 % bootstrap. */
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 120_000;

/** `GETINFO status/bootstrap-phase` or a `STATUS_CLIENT … BOOTSTRAP` event, parsed (control-spec §4.1.10). */
export interface BootstrapStatus {
  progress: number;
  tag: string;
  summary: string;
  /** NOTICE normally, WARN when reporting a problem. */
  severity: string;
  warning?: string;
  reason?: string;
  /** `warn` (tell the user: tor thinks it may not recover) or `ignore` (transient). */
  recommendation?: string;
}

export interface WaitForBootstrapOptions extends AbortOptions {
  onProgress?: (status: BootstrapStatus) => void;
  /**
   * What a problem with `RECOMMENDATION=warn` does: `'fail'` (default) rejects with `ERR_TOR_BOOTSTRAP`;
   * `'continue'` only reports it through `onProgress` and keeps waiting until the timeout.
   */
  onWarning?: 'fail' | 'continue';
}

/** Parses `GETINFO status/bootstrap-phase` (`NOTICE BOOTSTRAP PROGRESS=… TAG=… SUMMARY=…`). */
export function parseBootstrap(line: string): BootstrapStatus {
  const { words, kv } = splitArgs(line, true);
  if (words[1] !== 'BOOTSTRAP') {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'malformed bootstrap status', {
      details: { raw: clip(line) },
    });
  }
  return bootstrapFromArgs(words[0] as string, kv, line);
}

/** A bootstrap status from an event's severity and key=value arguments (`raw` is quoted in errors). */
export function bootstrapFromArgs(
  severity: string,
  kv: Record<string, string>,
  raw: string,
): BootstrapStatus {
  const progress = Number(kv.PROGRESS);
  if (kv.PROGRESS === undefined || !Number.isInteger(progress) || progress < 0 || progress > 100) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'malformed bootstrap status', {
      details: { raw: clip(raw) },
    });
  }
  return {
    progress,
    tag: kv.TAG ?? '',
    summary: kv.SUMMARY ?? '',
    severity,
    ...(kv.WARNING !== undefined ? { warning: kv.WARNING } : {}),
    ...(kv.REASON !== undefined ? { reason: kv.REASON } : {}),
    ...(kv.RECOMMENDATION !== undefined ? { recommendation: kv.RECOMMENDATION } : {}),
  };
}
