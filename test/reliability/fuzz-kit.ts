// The pieces every fuzz target shares: the target shape, mutation of real captured bytes, and the verdicts
// (refused with a typed MmogitError, accepted, or a defect).
import fc from 'fast-check';
import { MmogitError } from '../../src/errors.js';

/**
 * One parser of untrusted input under fuzz. `check` runs the parser on one input and throws (anything) only
 * for a defect: an error that is not a {@link MmogitError}, a forgery accepted, a limit not enforced.
 */
export interface FuzzTarget<T = unknown> {
  name: string;
  input: fc.Arbitrary<T>;
  check(input: T): void | Promise<void>;
  /** Async targets are driven by `fc.asyncProperty` with a per-case time limit (a hang is a failure). */
  async?: boolean;
  /** Inputs that once found a defect (fixed since): run first on every run, whatever the seed. */
  regressions?: readonly T[];
}

export function target<T>(t: FuzzTarget<T>): FuzzTarget {
  return t as unknown as FuzzTarget;
}

/** The parser ran to completion (`accepted`) or refused with a typed error (`refused`). */
export type Verdict<R> = { accepted: true; value: R } | { accepted: false; error: MmogitError };

/** Defect: the parser threw something that is not a typed MmogitError (a TypeError, a RangeError, …). */
export class UntypedThrow extends Error {
  constructor(readonly thrown: unknown) {
    super(`untyped throw: ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`);
  }
}

function typed(e: unknown): MmogitError {
  if (e instanceof MmogitError) return e;
  throw new UntypedThrow(e);
}

export function verdict<R>(run: () => R): Verdict<R> {
  try {
    return { accepted: true, value: run() };
  } catch (e) {
    return { accepted: false, error: typed(e) };
  }
}

export async function verdictAsync<R>(run: () => Promise<R>): Promise<Verdict<R>> {
  try {
    return { accepted: true, value: await run() };
  } catch (e) {
    return { accepted: false, error: typed(e) };
  }
}

/** Defect unless `cond`: a forgery accepted or a refusal promise broken. */
export function must(cond: boolean, why: string): void {
  if (!cond) throw new Error(why);
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const utf8 = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array): string => dec.decode(b);

type Op =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; n: number }
  | { op: 'dup'; at: number; n: number }
  | { op: 'truncate'; at: number };

// Bytes that matter to the parsers under test: JSON punctuation, digits, line ends, length-like values.
const INTERESTING = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x0a, 0x0d, 0x20,
];

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.oneof(fc.nat(255), fc.constantFrom(...INTERESTING)),
  }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function apply(bytes: Uint8Array, ops: readonly Op[]): Uint8Array {
  let b = Buffer.from(bytes);
  for (const o of ops) {
    const at = b.length === 0 ? 0 : o.at % (b.length + (o.op === 'insert' ? 1 : 0));
    switch (o.op) {
      case 'flip':
        if (b.length) b[at] = (b[at] as number) ^ (1 << o.bit);
        break;
      case 'set':
        if (b.length) b[at] = o.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), o.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + o.n)]);
        break;
      case 'dup':
        b = Buffer.concat([b.subarray(0, at + o.n), b.subarray(at)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return new Uint8Array(b);
}

/** 1–6 mutations (bit flips, byte sets, inserts, deletes, duplications, truncation) of one of `seeds`. */
export function mutated(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(op, { minLength: 1, maxLength: 6 }))
    .map(([i, ops]) => apply(seeds[i] as Uint8Array, ops));
}

/** Mutations of real bytes, wholly random bytes, and (rarely) the seeds themselves unchanged. */
export function hostileBytes(seeds: readonly Uint8Array[], maxLength = 2048): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 6, arbitrary: mutated(seeds) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength }) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

/** Any JSON value, and objects shaped like `sample` with members replaced by any JSON value. */
export function hostileJson(samples: readonly Record<string, unknown>[]): fc.Arbitrary<unknown> {
  const anyJson = fc.jsonValue({ maxDepth: 3 });
  const edited = fc
    .tuple(fc.nat(samples.length - 1), fc.array(fc.tuple(fc.nat(), anyJson, fc.boolean()), { maxLength: 3 }))
    .map(([i, edits]) => {
      const s = { ...(samples[i] as Record<string, unknown>) };
      const keys = Object.keys(s);
      for (const [k, v, drop] of edits) {
        const key = keys[k % Math.max(1, keys.length)] ?? 'x';
        if (drop) delete s[key];
        else s[key] = v;
      }
      return s;
    });
  return fc.oneof({ weight: 1, arbitrary: anyJson }, { weight: 3, arbitrary: edited });
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
