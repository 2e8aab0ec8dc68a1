/**
 * The beacons of one client circuit (docs/mesh.md §Self-healing, Monitor and Analyse): every interval one to
 * the exit, every {@link HOP_PROBE_EVERY}th one to each hop; the round trip of each hop (EWMA) and the miss
 * and latency-jump rules that make a leg suspect. The circuit (circuit.ts) owns the cells; this owns the clock.
 * @module
 */
import { BEACON_MISSES_SUSPECT, DEFAULT_BEACON_INTERVAL_MS, HOP_PROBE_EVERY, MSG_BEACON } from './_wire.js';
import type { CircuitEvents, HopHealth } from './circuit-types.js';

/** What the beacons need of their circuit. */
export interface BeaconedLeg {
  readonly alive: boolean;
  /** A standby leg is probed only every {@link HOP_PROBE_EVERY}th interval. */
  readonly standby: boolean;
  readonly health: HopHealth[];
  /** Hops built so far (the exit is the last). */
  readonly hops: readonly unknown[];
  readonly events: CircuitEvents;
  /** Sends a relay message to hop `j` (1-based); throws once the circuit is closing. */
  sendTo(j: number, cmd: number, stream: number, data: Uint8Array): void;
  /** The circuit's own `probe` (which calls {@link Beacons.probe}): the ticks go through it, so its owner sees them. */
  probe(j: number): void;
}

/** One circuit's beacon clock, outstanding beacons and suspicion counters. */
export class Beacons {
  readonly #leg: BeaconedLeg;
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #tick = 0;
  /** Beacons not yet answered: sent at `at`, when this process had been stalled `stalledAt` ms in all. */
  readonly #outstanding = new Map<number, { hop: number; at: number; stalledAt: number }>();
  /** Total time the beacon ticks came late: this process could not run (as a link's SilenceMeter counts it). */
  #stalledMs = 0;
  #intervalMs = DEFAULT_BEACON_INTERVAL_MS;
  #missed = 0;
  #slow = 0;
  /** performance.now() of the last cell from the exit: any traffic proves the whole path alive. */
  #lastFromExit = performance.now();

  constructor(leg: BeaconedLeg) {
    this.#leg = leg;
  }

  /**
   * Starts the clock.
   *
   * The miss rule does not count this process's own stalls (the link's dead-link rule, src/mesh/_silence.ts,
   * does the same): a tick that comes later than one interval after the previous one shows this process was
   * stalled for the excess, and answers sent by live hops meanwhile wait unread in the socket (or, with the
   * relays on this host, the relays were stalled too). A beacon is
   * missed only once it went unanswered for half an interval of time this process could run; beacons go out
   * on every tick, a late one included (the tick after a stall skipped them, starving the exit of beacons).
   */
  start(intervalMs = DEFAULT_BEACON_INTERVAL_MS): void {
    if (this.#timer || !this.#leg.alive) return;
    this.#intervalMs = intervalMs;
    // the clock ticks every eighth of an interval, so a stall's unmeasured part (up to one tick) stays well
    // below the half interval a beacon is given; beacons go out once about an interval passed since the last
    const tickMs = Math.max(10, Math.floor(intervalMs / 8));
    let last = performance.now();
    let lastBeacons = last;
    this.#timer = setInterval(() => {
      const at = performance.now();
      this.#stalledMs += Math.max(0, at - last - tickMs);
      last = at;
      if (at - lastBeacons < intervalMs - tickMs / 2) return;
      lastBeacons = at;
      // judge after this turn's I/O (setImmediate runs after the poll phase), as of the tick's time
      setImmediate(() => this.#onTick(at));
    }, tickMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** A cell came from the exit. */
  heardFromExit(): void {
    this.#lastFromExit = performance.now();
  }

  /** Sends a beacon to hop `j` now (also used to localise a suspect leg). */
  probe(j: number): void {
    if (!this.#leg.alive) return;
    const id = this.#nextId++ >>> 0;
    const data = Buffer.alloc(4);
    data.writeUInt32BE(id);
    this.#outstanding.set(id, { hop: j, at: performance.now(), stalledAt: this.#stalledMs });
    (this.#leg.health[j - 1] as HopHealth).sent++;
    try {
      this.#leg.sendTo(j, MSG_BEACON, 0, data);
    } catch {
      // closing
    }
  }

  #onTick(at: number): void {
    if (!this.#leg.alive) return;
    if (this.#leg.standby && (this.#tick++ % HOP_PROBE_EVERY !== 0 || this.#outstanding.size > 0)) return;
    const n = this.#leg.hops.length;
    // a beacon still outstanding when the next is due is missed (counted once), unless other cells from the
    // exit arrived since it was sent (traffic proves the path alive; a beacon queued behind bulk data is late)
    let exitMissed = false;
    for (const [id, o] of this.#outstanding) {
      // not due yet: most of its wait was this process's own stall (see start)
      if (at - o.at - (this.#stalledMs - o.stalledAt) < this.#intervalMs / 2) continue;
      this.#outstanding.delete(id);
      if (o.hop === n && this.#lastFromExit > o.at) continue;
      const h = this.#leg.health[o.hop - 1] as HopHealth;
      h.lost++;
      h.lostSinceAnswer = true;
      if (o.hop === n) exitMissed = true;
    }
    this.#missed = exitMissed ? this.#missed + 1 : 0;
    if (this.#missed >= BEACON_MISSES_SUSPECT) {
      this.#missed = 0;
      this.#leg.events.onSuspect?.(this.#nearestSilent(), 'missed');
    }
    this.#tick++;
    if (this.#tick % HOP_PROBE_EVERY === 0 || exitMissed) for (let j = 1; j < n; j++) this.#leg.probe(j);
    this.#leg.probe(n);
  }

  /** The nearest hop whose last probe went unanswered (the exit when none did). */
  #nearestSilent(): number {
    const health = this.#leg.health;
    for (let j = 1; j <= health.length; j++) {
      const h = health[j - 1] as HopHealth;
      if (h.lostSinceAnswer) return j;
    }
    return health.length;
  }

  /** A BEACON_ACK from hop `from`. */
  onAck(from: number, data: Uint8Array): void {
    if (data.length !== 4) return;
    const id = Buffer.from(data).readUInt32BE(0);
    const o = this.#outstanding.get(id);
    if (!o || o.hop !== from) return;
    this.#outstanding.delete(id);
    // this process's stalls since the beacon went out are not the path's round trip
    const rtt = Math.max(0, performance.now() - o.at - (this.#stalledMs - o.stalledAt));
    const h = this.#leg.health[from - 1] as HopHealth;
    h.lostSinceAnswer = false;
    const prev = h.rttMs;
    h.rttMs = prev === null ? rtt : prev + (rtt - prev) / 8;
    h.samples++;
    const events = this.#leg.events;
    events.onRtt?.(from, rtt);
    const exit = this.#leg.hops.length;
    if (from === exit && prev !== null && rtt > Math.max(4 * prev, prev + 250)) {
      if (++this.#slow >= 3) {
        this.#slow = 0;
        events.onSuspect?.(this.#nearestSilent(), 'latency');
      }
    } else if (from === exit) this.#slow = 0;
  }
}
