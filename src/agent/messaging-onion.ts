/**
 * Onion addresses on the messaging path, checked once per address instead of once per use. Every message and
 * ack names two or three onions (`from`, `to`, `by`) and each full check (base32 decode and a SHA3-256
 * checksum, rend-spec-v3 §6) cost ~20 µs here: about five per message, ~0.1 ms of a pipelined message's CPU
 * (docs/protocol.md §5.7.2.4). The result for a given string never changes, so a bounded memo gives the same
 * answers.
 * @module
 */
import { parseOnionAddress } from '../identity/onion.js';

/** Inputs known to be valid, mapped to their canonical hostname (`<56 base32>.onion`, lower case). */
const hostnames = new Map<string, string>();
/** Enough for every peer an agent talks to; the oldest entry goes when full (any entry may: it is a memo). */
const MEMO_MAX = 1024;

/**
 * The canonical hostname of onion address `input` (any case, with or without `.onion`), as
 * `parseOnionAddress(input).hostname`.
 *
 * @throws MmogitError `ERR_INVALID_ONION` (not memoised: invalid inputs are checked every time).
 */
export function onionHostname(input: string): string {
  const known = hostnames.get(input);
  if (known !== undefined) return known;
  const hostname = parseOnionAddress(input).hostname;
  if (hostnames.size >= MEMO_MAX) hostnames.delete(hostnames.keys().next().value as string);
  hostnames.set(input, hostname);
  return hostname;
}

/** True when `x` is a valid onion address in its canonical form (lower case, `.onion` suffix). */
export function isCanonicalOnion(x: unknown): x is string {
  if (typeof x !== 'string') return false;
  if (hostnames.get(x) === x) return true;
  if (x !== x.toLowerCase() || !x.endsWith('.onion')) return false;
  try {
    return onionHostname(x) === x;
  } catch {
    return false;
  }
}
