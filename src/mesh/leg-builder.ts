/**
 * Building one leg for the mesh (docs/mesh.md §Path selection): a path chosen by reputation, avoiding the
 * relays held off and those the caller excludes, built as a {@link Circuit}; up to {@link BUILD_ATTEMPTS} paths,
 * each avoiding the relay that failed the last one. Every outcome feeds reputation, hold-off and the metrics;
 * a built leg's beacons and tamper reports go to reputation too. Which set a leg serves is mesh.ts's job.
 * @module
 */
import type { EventEmitter } from 'node:events';
import { Circuit, type RelayInfo } from './circuit.js';
import { MeshError } from './errors.js';
import type { Target } from './exit-policy.js';
import type { RelayHoldOff } from './hold-off.js';
import type { LinkPool } from './link-pool.js';
import { type MeshEvents, nowEpochMs } from './mesh-events.js';
import type { MeshMetrics } from './metrics.js';
import { choosePath } from './path.js';
import { MIN_SCORE, type Reputation } from './reputation.js';

/** Attempts to build a leg before giving up (each on a fresh path avoiding the relays that failed). */
export const BUILD_ATTEMPTS = 3;
/** Build failures that say the relay could not be reached (it is held off); others say nothing of its health. */
const UNREACHED = new Set(['hop-unreachable', 'unreachable', 'timeout', 'link-lost', 'link-timeout']);

/** What a leg build needs of its mesh. */
export interface LegBuilderOptions {
  hops: number;
  intervalMs: number;
  pool: LinkPool;
  metrics: MeshMetrics;
  reputation: Promise<Reputation>;
  holdOff: RelayHoldOff;
  /** `"<exit onion> <host>:<port>"` of the exits that refused a target. */
  refused: ReadonlySet<string>;
  /** The relays known now, and one of them by onion. */
  relays: () => RelayInfo[];
  relay: (onion: string) => RelayInfo | undefined;
  addRelay: (relay: RelayInfo) => void;
  /** Finds more relays (the DHT) when the known ones cannot make a path. */
  discover?: ((signal: AbortSignal) => Promise<RelayInfo[]>) | undefined;
  /** A held-off relay proved alive: standby builds waiting for a retry may start now. */
  kickRetries: () => void;
  /** A built leg's hop stopped answering beacons or slowed down. */
  onSuspect: (circ: Circuit, hop: number, why: 'missed' | 'latency') => void;
  events: EventEmitter<MeshEvents>;
}

/** What a leg is for: a new set's primary (any exit allowing `target`) or another leg to `exit`. */
export interface LegRequest {
  target?: Target;
  exit?: RelayInfo;
  avoid: readonly string[];
}

/** Builds legs for one mesh. */
export class LegBuilder {
  readonly #o: LegBuilderOptions;

  constructor(options: LegBuilderOptions) {
    this.#o = options;
  }

  async build(req: LegRequest, signal: AbortSignal, role: 'primary' | 'standby'): Promise<Circuit> {
    const o = this.#o;
    const rep = await o.reputation;
    // held-off relays, except in a set too small for a primary and a standby leg with one spare: then those
    // whose early try is due are let through rather than fail for want of a path
    const held = o.holdOff.avoid(o.relays(), (r) => rep.score(r.onion) >= MIN_SCORE, 2 * o.hops);
    const avoid = [...req.avoid, ...held.filter((x) => x !== req.exit?.onion)];
    let last: unknown;
    let discovered = false;
    for (let attempt = 0; attempt < BUILD_ATTEMPTS; attempt++) {
      let path: RelayInfo[];
      try {
        path = choosePath(o.relays(), rep, {
          hops: o.hops,
          target: req.target,
          exit: req.exit,
          avoid,
          refused: o.refused,
        });
      } catch (e) {
        // not enough known relays: ask the DHT once, then try again
        if (!discovered && o.discover) {
          discovered = true;
          for (const r of await o.discover(signal).catch(() => [])) o.addRelay(r);
          attempt--;
          continue;
        }
        throw last ?? e;
      }
      for (const r of path) o.holdOff.trying(r.onion);
      try {
        const circ = await Circuit.build(path, {
          pool: o.pool,
          signal,
          events: {
            onSuspect: (hop, why) => o.onSuspect(circ, hop, why),
            onRtt: (hop, ms) => {
              o.metrics.hopRttSeconds.observe({ hop: String(hop) }, ms / 1000);
              void o.reputation.then((r) => r.rtt((path[hop - 1] as RelayInfo).onion, ms));
            },
            onTampering: ([a, b]) => this.#onTampering(path, a, b),
          },
        });
        rep.built(path.map((r) => r.onion));
        let released = false;
        for (const r of path) released = o.holdOff.alive(r.onion) || released;
        if (released) o.kickRetries();
        o.metrics.circuitsBuilt.inc();
        o.metrics.buildSeconds.observe(circ.buildMs / 1000);
        o.metrics.handshakeSeconds.observe(circ.buildCpuMs / 1000 / path.length);
        circ.startBeacons(o.intervalMs);
        o.events.emit('circuit:built', {
          serial: circ.serial,
          path: path.map((r) => r.onion),
          role,
          ms: circ.buildMs,
          cpuMs: circ.buildCpuMs,
        });
        return circ;
      } catch (e) {
        last = e;
        const hop = e instanceof MeshError ? (e.details?.hop as number | undefined) : undefined;
        const relay = hop !== undefined ? path[hop - 1] : undefined;
        o.metrics.circuitsFailed.inc({ reason: e instanceof MeshError ? e.reason : 'error' });
        if (relay && hop !== undefined) {
          rep.failed(relay.onion);
          if (relay.onion !== req.exit?.onion) avoid.push(relay.onion);
          if (e instanceof MeshError && UNREACHED.has(e.reason)) o.holdOff.lost(relay, o.relay(relay.onion));
          // the hops before it answered (they extended the circuit)
          let released = false;
          for (const r of path.slice(0, hop - 1)) released = o.holdOff.alive(r.onion) || released;
          if (released) o.kickRetries();
        }
        o.events.emit('circuit:failed', {
          error:
            e instanceof MeshError ? e : new MeshError('build-failed', String((e as Error)?.message ?? e)),
          ...(hop !== undefined ? { hop } : {}),
          ...(relay ? { relay: relay.onion } : {}),
          at: nowEpochMs(),
        });
        if (signal.aborted) throw e;
        if (relay && relay.onion === req.exit?.onion) throw e; // the exit itself is unreachable
      }
    }
    throw last instanceof MeshError
      ? last
      : new MeshError('build-failed', `no circuit after ${BUILD_ATTEMPTS} attempts`, { cause: last });
  }

  /** A layer failed between hops `a` and `b` (1-based; 0 is the client): both lose reputation. */
  #onTampering(path: readonly RelayInfo[], a: number, b: number): void {
    this.#o.metrics.tampering.inc();
    const relays = [a, b]
      .filter((h) => h >= 1 && h <= path.length)
      .map((h) => (path[h - 1] as RelayInfo).onion);
    void this.#o.reputation.then(async (r) => {
      for (const x of relays) r.tampered(x);
      await r.save();
    });
    this.#o.events.emit('tampering', { relays, at: nowEpochMs() });
  }
}
