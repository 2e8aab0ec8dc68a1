import { MmogitError } from '../errors.js';

/** A value that has exactly one canonical encoding (JSON without floats' ambiguity, `undefined` or cycles). */
export type CanonicalValue =
  | string
  | number
  | boolean
  | null
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue | undefined };

/**
 * Canonical JSON, after RFC 8785 (JCS) restricted to what our signed objects use: object keys sorted by UTF-16
 * code units, no whitespace, `undefined` members dropped, numbers must be finite and are written by
 * `JSON.stringify` (which matches JCS for every safe integer and for the decimals we emit, e.g. confidence
 * 0.9). Strings are emitted by `JSON.stringify` (JCS §3.2.2.2 escaping). Signed bytes are the UTF-8 of this.
 *
 * @example canonicalJson({ b: 1, a: [true, null] }) === '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: CanonicalValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `canonical JSON cannot encode ${value}`);
      }
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v as CanonicalValue)).join(',')}]`;
      const record = value as { readonly [key: string]: CanonicalValue | undefined };
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k] as CanonicalValue)}`).join(',')}}`;
    }
    default:
      throw new MmogitError('ERR_INVALID_ARGUMENT', `canonical JSON cannot encode a ${typeof value}`);
  }
}

/**
 * Whether `value` has a canonical encoding: strings, finite numbers, booleans, null, and arrays and plain objects
 * of those (`undefined` members allowed, they are dropped). The type guard for typed records (an advertisement,
 * an entry) that are canonical values by construction but whose interfaces TypeScript cannot see as one.
 */
export function isCanonicalValue(value: unknown): value is CanonicalValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isCanonicalValue);
  if (typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => v === undefined || isCanonicalValue(v));
}

/**
 * `value` as a {@link CanonicalValue}, checked: the one converter from typed records to what
 * {@link canonicalJson} encodes. Throws `ERR_INVALID_ARGUMENT` for anything without a canonical encoding.
 *
 * @example canonicalBytes(toCanonical(advert))
 */
export function toCanonical(value: unknown): CanonicalValue {
  if (!isCanonicalValue(value)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'value has no canonical JSON encoding');
  }
  return value;
}

const encoder = new TextEncoder();

/** UTF-8 bytes of {@link canonicalJson}. */
export function canonicalBytes(value: CanonicalValue): Uint8Array {
  return encoder.encode(canonicalJson(value));
}
