/**
 * What a client circuit (circuit.ts) is built with and reports: per-hop health, its events, its build options.
 * @module
 */
import type { RelayMessage } from './cells.js';
import type { MeshError } from './errors.js';
import type { LinkPool } from './link-pool.js';

/** Round trip of one hop (EWMA, RFC 6298's α = 1/8) and beacon counters. */
export interface HopHealth {
  rttMs: number | null;
  samples: number;
  lost: number;
  sent: number;
  /** The last probe to this hop went unanswered. */
  lostSinceAnswer: boolean;
}

/** What a circuit tells its owner. */
export interface CircuitEvents {
  /** A message from hop `from` (1-based) that the circuit itself does not handle. */
  onMessage?: (from: number, msg: RelayMessage) => void;
  /** The circuit ended; `error.details.hop` names the hop that reported it, when known. */
  onClosed?: (error: MeshError) => void;
  /** A hop stopped answering beacons or its round trip jumped (docs/mesh.md §Analyse). */
  onSuspect?: (hop: number, why: 'missed' | 'latency') => void;
  /** Each beacon answer (for metrics). */
  onRtt?: (hop: number, rttMs: number) => void;
  /** A layer failed to authenticate between hops `hops[0]` and `hops[1]` (0 = the client itself). */
  onTampering?: (hops: readonly [number, number]) => void;
}

export interface BuildOptions {
  pool: LinkPool;
  signal?: AbortSignal;
  /** Per hop (default `HOP_BUILD_TIMEOUT_MS` of _wire.ts; ×6 for hops reached by onion). */
  hopTimeoutMs?: number;
  events?: CircuitEvents;
}
