// Shared by the reliability tests: bounded waiting, and a raw reachability check of an onion from another tor.
import { randomBytes } from 'node:crypto';
import { socksConnect } from '../../src/tor/socks.js';

/** Polls `check` every `everyMs` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Whether `onion:port` accepts a stream through the tor at `socksPort`, on fresh circuits (a new isolation
 * username each time), within `timeoutMs`.
 */
export async function reachable(
  socksPort: number,
  onion: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  try {
    const s = await socksConnect(
      { socksPort, host: onion, port, isolationKey: `reach:${randomBytes(8).toString('hex')}` },
      { timeoutMs },
    );
    s.destroy();
    return true;
  } catch {
    return false;
  }
}

/** Median and maximum of `xs` (ms). */
export function summary(xs: number[]): { n: number; median: number; max: number; min: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, max: s[s.length - 1]!, min: s[0]! };
}
