/**
 * Label values for metrics, kept apart from prom-client so the parts that count can name a reason without
 * loading it.
 * @module
 */
import { ERROR_CODES } from '../errors.js';

/**
 * A bounded label value for an error: its stable code when it is one of ours (a closed table in errors.ts),
 * `other` for anything else (a peer can send any string; it never becomes a label).
 */
export function reasonLabel(code: unknown): string {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? code : 'other';
}
