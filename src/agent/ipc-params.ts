/**
 * Typed readers for the `params` object of a daemon IPC request (docs/protocol.md §7). The request comes from
 * the socket, so every field is checked for its type and range before a handler uses it; a bad field is
 * `ERR_INVALID_ARGUMENT` naming the field. Fields a method does not know are ignored (a newer client may send
 * more), never passed on.
 * @module
 */
import { MmogitError } from '../errors.js';

/** The params of one request: a plain JSON object (checked by the IPC server). */
export type IpcParams = Readonly<Record<string, unknown>>;

/** Longest string field we accept (a message text is capped lower by the messenger). */
export const IPC_MAX_STRING = 256 * 1024;
/** Most items of an array field (services, peers). */
export const IPC_MAX_ITEMS = 256;

function invalid(name: string, what: string, value: unknown): MmogitError {
  const got = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  return new MmogitError('ERR_INVALID_ARGUMENT', `IPC parameter "${name}" must be ${what} (got ${got})`, {
    details: { param: name },
  });
}

/** A non-empty string of at most `max` characters. */
export function stringParam(params: IpcParams, name: string, max = IPC_MAX_STRING): string {
  const v = params[name];
  if (typeof v !== 'string' || v === '' || v.length > max) {
    throw invalid(name, `a non-empty string of at most ${max} characters`, v);
  }
  return v;
}

/** An integer in `[min, max]`, or undefined when absent (or JSON `null`). */
export function optionalIntParam(
  params: IpcParams,
  name: string,
  range: { min: number; max: number },
): number | undefined {
  const v = params[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < range.min || v > range.max) {
    throw invalid(name, `an integer in [${range.min}, ${range.max}]`, v);
  }
  return v;
}

/** An array of at most {@link IPC_MAX_ITEMS} non-empty strings of at most `max` characters; `[]` when absent. */
export function stringArrayParam(params: IpcParams, name: string, max = 1024): string[] {
  const v = params[name];
  if (v === undefined || v === null) return [];
  const what = `an array of at most ${IPC_MAX_ITEMS} non-empty strings of at most ${max} characters`;
  if (!Array.isArray(v) || v.length > IPC_MAX_ITEMS) throw invalid(name, what, v);
  for (const item of v) {
    if (typeof item !== 'string' || item === '' || item.length > max) throw invalid(name, what, item);
  }
  return v as string[];
}
