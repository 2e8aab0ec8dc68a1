/**
 * How long a link's neighbour has been silent, for the dead-link rule of docs/mesh.md §Self-healing (Monitor):
 * dead after 3 of the neighbour's intervals with nothing received (BFD's detection time, RFC 5880 §6.8.4),
 * counting only time during which this process could listen. Pure: the link feeds it `performance.now()`
 * times from its periodic tick and its reads; no timers, no I/O.
 *
 * Why the local stalls are taken out: a process whose event loop is blocked (a long synchronous job, a GC
 * pause, or simply not being scheduled on a loaded machine) reads nothing, so what its neighbour sent meanwhile
 * waits unread in the socket, and wall-clock silence grows although the neighbour is alive. In a 100-kill
 * failover run at load ~25 on 2 cores, links between live relays were declared dead ("silent for 2006 ms"
 * against 3 × 500 ms), which cost recoveries (91 of 100, against ≥ 99 %). The fix: the link ticks every half interval; a tick
 * that comes later than one period after the previous one shows that this process was stalled for the excess,
 * and that excess is not counted as the neighbour's silence. A neighbour that really stopped (a dead host, a
 * black-holed route) is still detected after 3 intervals of silence while this loop runs on time: the
 * discount is the measured lag, about a millisecond per tick on an idle machine. (`kill -9` of a neighbour on
 * the same host is detected sooner still: its socket closes.)
 *
 * The silence is judged as of a tick's time, after that turn's I/O (the link judges in `setImmediate`, which
 * runs after the poll phase): so what arrived before the tick has been read, even when a long callback ran
 * between the tick and the judgement.
 * @module
 */
export class SilenceMeter {
  readonly #periodMs: number;
  #lastTick: number;
  /** Total time the ticks came late: this process could not run. */
  #stalledMs = 0;
  #lastReceived: number;
  #stalledAtReceive = 0;

  /** `periodMs`: the tick's period; `now`: the start (counts as a receipt: a new link is not silent). */
  constructor(periodMs: number, now: number) {
    this.#periodMs = periodMs;
    this.#lastTick = now;
    this.#lastReceived = now;
  }

  /** The periodic tick fired at `now`: whatever exceeds one period since the previous tick was a stall. */
  tick(now: number): void {
    this.#stalledMs += Math.max(0, now - this.#lastTick - this.#periodMs);
    this.#lastTick = now;
  }

  /** Something arrived from the neighbour at `now`. */
  received(now: number): void {
    this.#lastReceived = now;
    this.#stalledAtReceive = this.#stalledMs;
  }

  /** Time this process was stalled since the last receipt (ms). */
  get stalledSinceReceive(): number {
    return this.#stalledMs - this.#stalledAtReceive;
  }

  /** The neighbour's silence at `at` (a tick's time): since the last receipt, minus this process's stalls. */
  silentMs(at: number): number {
    return Math.max(0, at - this.#lastReceived - this.stalledSinceReceive);
  }
}
