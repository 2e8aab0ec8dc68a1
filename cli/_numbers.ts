import { type ErrorCode, MmogitError } from '../src/errors.js';

/**
 * The one parser of the CLI's numeric flags (counts, seconds, fractions, durations). yargs hands them over as
 * the text the user typed (they are declared `type: 'string'`): its own number coercion accepts `0x1`, `1e3`,
 * `Infinity` and turns anything else into NaN, which then slipped through `?? default` checks. Here a value is
 * plain decimal digits, inside the flag's bounds, given once, or the command refuses it with a usage error
 * (exit 2) before it does anything — in particular before `tor start` spawns a daemon.
 */

/** Inclusive bounds of a flag's value. */
export interface Bounds {
  min: number;
  max: number;
}

/** Bounds shared by the commands (each names its own when it differs). */
export const BOUNDS = {
  /** `--limit` of recall, show, inbox. */
  limit: { min: 1, max: 1_000_000 },
  /** `--limit` of tor discover. */
  discoverLimit: { min: 1, max: 1_000 },
  /** `--timeout` in seconds: at least a second (tor needs more), at most an hour. */
  timeoutSeconds: { min: 1, max: 3_600 },
  /** `recall --hours`: up to a hundred years back. */
  hours: { min: Number.MIN_VALUE, max: 876_000 },
  /** `remember --confidence`. */
  confidence: { min: 0, max: 1 },
  /** `remember --expires <duration>`: a second to a hundred years ahead. */
  expiresMs: { min: 1_000, max: 36_500 * 86_400_000 },
  /** `testnet up --authorities` / `--relays` (src/tor/testnet.ts takes 1..16 and 0..32). */
  authorities: { min: 1, max: 16 },
  relays: { min: 0, max: 32 },
  /** `mesh socks --port` (0: any free port). */
  port: { min: 0, max: 65_535 },
  /** `mesh socks --hops` (src/mesh/_wire.ts MIN_HOPS..MAX_HOPS). */
  hops: { min: 1, max: 5 },
  /** `mesh relay|socks --interval` in ms: the beacon timer ticks at most every 10 ms. */
  intervalMs: { min: 10, max: 60_000 },
} as const satisfies Record<string, Bounds>;

/** The numeric and duration flags: `--ttl -5h` is glued to `--ttl=-5h` so it is refused, not read as `-5 -h`. */
export const NUMERIC_FLAGS = [
  'limit',
  'timeout',
  'hours',
  'confidence',
  'ttl',
  'expires',
  'authorities',
  'relays',
  'count',
  'lines',
  'max-file-bytes',
  'port',
  'hops',
  'interval',
] as const;

/**
 * Joins `--<numeric flag>` and a following value that starts with `-` and a digit or dot (`-1`, `-5h`, `-.5`)
 * into `--flag=value`. Without it yargs takes `-5h` for the short flags `-5 -h` and prints help with exit 0;
 * joined, the value reaches {@link parseCount} and friends, which refuse it. Stops at `--`.
 */
export function glueNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    const flag = a.startsWith('--') ? a.slice(2) : '';
    if (next !== undefined && (NUMERIC_FLAGS as readonly string[]).includes(flag) && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

interface ParseOptions {
  /** The code of the refusal (default ERR_INVALID_ARGUMENT; memory fields use ERR_INVALID_MEMORY). */
  code?: ErrorCode;
}

/** The single text of a flag: refuses a repeated flag, an empty one and anything but a string or a number. */
function single(value: unknown, flag: string, code: ErrorCode): string {
  if (Array.isArray(value)) throw new MmogitError(code, `--${flag} is given more than once`);
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string' || value.trim() === '') {
    throw new MmogitError(code, `--${flag} needs a value`);
  }
  return value.trim();
}

function refuse(flag: string, text: string, want: string, code: ErrorCode): MmogitError {
  return new MmogitError(code, `--${flag} must be ${want}, got ${JSON.stringify(text)}`, {
    details: { flag, value: text },
  });
}

function range(bounds: Bounds): string {
  return bounds.min === Number.MIN_VALUE
    ? `above 0 and at most ${bounds.max}`
    : `in ${bounds.min}..${bounds.max}`;
}

/** A whole number in `bounds`: decimal digits only (`-1`, `NaN`, `0x1`, `1e3`, `2.5` are refused). */
export function parseCount(value: unknown, flag: string, bounds: Bounds, options: ParseOptions = {}): number {
  const code = options.code ?? 'ERR_INVALID_ARGUMENT';
  const text = single(value, flag, code);
  const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < bounds.min || n > bounds.max) {
    throw refuse(flag, text, `a whole number ${range(bounds)}`, code);
  }
  return n;
}

/** A decimal number in `bounds` (`0.9`, `30`; no sign, exponent, hex, `Infinity` or `NaN`). */
export function parseDecimal(
  value: unknown,
  flag: string,
  bounds: Bounds,
  options: ParseOptions = {},
): number {
  const code = options.code ?? 'ERR_INVALID_ARGUMENT';
  const text = single(value, flag, code);
  const n = /^\d{1,16}(\.\d{1,16})?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < bounds.min || n > bounds.max) {
    throw refuse(flag, text, `a number ${range(bounds)}`, code);
  }
  return n;
}

/** `--timeout` in seconds (decimal) as milliseconds; `fallback` seconds when the flag is absent. */
export function parseTimeoutMs(value: unknown, fallbackSeconds: number, flag = 'timeout'): number {
  if (value === undefined) return fallbackSeconds * 1000;
  return Math.round(parseDecimal(value, flag, BOUNDS.timeoutSeconds) * 1000);
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Whether `text` has the shape of a duration (`90s`, `30m`, `6h`, `1.5d`), whatever its size. */
export function looksLikeDuration(text: string): boolean {
  return /^\d+(\.\d+)?[smhd]$/.test(text.trim());
}

/** Parses "90s", "30m", "6h", "1d" into milliseconds, inside `boundsMs`. */
export function parseDuration(
  value: unknown,
  flag: string,
  boundsMs: Bounds,
  options: ParseOptions = {},
): number {
  const code = options.code ?? 'ERR_INVALID_ARGUMENT';
  const text = single(value, flag, code);
  const m = /^(\d{1,16}(?:\.\d{1,16})?)([smhd])$/.exec(text);
  const ms = m ? Math.round(Number(m[1]) * (UNITS[m[2] as string] as number)) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < boundsMs.min || ms > boundsMs.max) {
    throw refuse(
      flag,
      text,
      `a duration like 30m, 6h or 1d from ${human(boundsMs.min)} to ${human(boundsMs.max)}`,
      code,
    );
  }
  return ms;
}

/** A bound in the largest unit that divides it ("24h", "36500d", "1s"). */
function human(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms} ms`;
}
