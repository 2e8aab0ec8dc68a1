/**
 * Test support: the latency profiles of the simulated transport (test/support/sim-transport.ts) and the
 * seeded random draws it makes from them. Pure: no timers, no I/O.
 *
 * A profile says what one tor onion connection costs, in three numbers a DHT feels:
 * - `setupMs`: a cold connect (descriptor fetch, introduction, rendezvous: rend-spec-v3 §3) before the
 *   first byte can flow; drawn uniformly in `[min, max]`;
 * - `warmSetupMs`: a new connection to an onion this dialer reached a moment ago (tor attaches the stream to
 *   the open rendezvous circuit, no new introduction), kept for `circuitReuseMs`;
 * - `oneWayMs`: each write's one-way delay, `base + jitter · u` with u uniform in [0, 1); writes on one
 *   direction never overtake each other (a tor circuit is ordered).
 * Not modelled: bandwidth (DHT messages are small), loss (tor circuits are reliable: they fail whole), tor's
 * CPU.
 * @module
 */

/** A uniform range, milliseconds. */
export interface MsRange {
  min: number;
  max: number;
}

export interface SimProfile {
  name: string;
  setupMs: MsRange;
  warmSetupMs: MsRange;
  /** How long a dialer keeps a rendezvous circuit to an onion it reached (tor's MaxCircuitDirtiness). */
  circuitReuseMs: number;
  oneWayMs: { base: number; jitter: number };
}

/**
 * This project's private Tor network (docs/benchmarks.md §tor, docs/tor.md, 2-core VM, relays on loopback):
 * - cold onion connect: "first round trip" 26–28 ms after the onion's descriptor was uploaded (a SOCKS
 *   connect to a new onion, its rendezvous and one echo; `benchTorStart`, bench/tor.ts), so 20–40 ms;
 * - warm SOCKS connect to an onion already reached: 3.4 ms median (`benchWarmSocksConnect`), so 2–5 ms;
 * - bare echo through two agent tors with the TCP_NODELAY shim: 0.96 ms median, 1.29 ms p90 (51 B), so a
 *   one-way delay of 0.45 + 0.25·u ms (round trip 0.9–1.4 ms).
 */
export const PRIVATE_PROFILE: SimProfile = {
  name: 'private',
  setupMs: { min: 20, max: 40 },
  warmSetupMs: { min: 2, max: 5 },
  // tor-manual MaxCircuitDirtiness: 10 minutes by default
  circuitReuseMs: 10 * 60_000,
  oneWayMs: { base: 0.45, jitter: 0.25 },
};

/**
 * The live public Tor network, from published figures (not measured here):
 * - onion service connection set-up 13–20 s (issue 15's figure; Loesing, Sandmann, Wilms, Wirtz,
 *   "Performance Measurements and Statistics of Tor Hidden Services", SAINT 2008,
 *   https://www.computer.org/csdl/proceedings/saint/2008/3297/00/3297a001-abs.html, measured the sub-steps:
 *   descriptor fetch, introduction, rendezvous, each seconds on the live network);
 * - round trips over an onion circuit of a few hundred ms (Tor Metrics OnionPerf, "circuit round-trip
 *   latencies", https://metrics.torproject.org/onionperf-latencies.html): one-way 100 + 200·u ms, so round
 *   trips of 200–600 ms;
 * - a warm connect is one round trip on the open circuit (RELAY_BEGIN → RELAY_CONNECTED, tor-spec §6.2).
 */
export const PUBLIC_PROFILE: SimProfile = {
  name: 'public',
  setupMs: { min: 13_000, max: 20_000 },
  warmSetupMs: { min: 200, max: 600 },
  circuitReuseMs: 10 * 60_000,
  oneWayMs: { base: 100, jitter: 200 },
};

/** Profiles by name, for command lines. */
export const SIM_PROFILES: Readonly<Record<string, SimProfile>> = {
  private: PRIVATE_PROFILE,
  public: PUBLIC_PROFILE,
};

/** A seeded PRNG (mulberry32: 32-bit state, period 2^32), uniform in [0, 1). Same seed, same draws. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A draw in `[range.min, range.max]`. */
export function drawRange(range: MsRange, random: () => number): number {
  return range.min + (range.max - range.min) * random();
}

/** A one-way delay: `base + jitter · u`, so within `[base, base + jitter)`. */
export function drawOneWay(profile: SimProfile, random: () => number): number {
  return profile.oneWayMs.base + profile.oneWayMs.jitter * random();
}

/** A seed from the clock and the process id when none is given (printed by every caller, so a run repeats). */
export function freshSeed(): number {
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
