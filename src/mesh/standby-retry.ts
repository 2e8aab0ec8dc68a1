/**
 * When a set's failed standby build is tried again (docs/mesh.md §Self-healing, Plan): a per-set backoff timer,
 * doubling to a cap, that a relay becoming usable again cuts short. The caller decides whether a set still
 * wants a standby; this only keeps the delays and the timers.
 * @module
 */

/**
 * A failed standby build is tried again after this long, doubled after every further failure up to
 * {@link STANDBY_RETRY_MAX_MS} (as TCP backs off its retransmission timer, RFC 6298 §5.5): without a retry a set
 * whose standby build failed once (its relays briefly down, the DHT not yet answered) ran without a standby
 * until its primary failed and took its streams with it; without the cap and the doubling, relays that stay
 * down would be dialled every second forever.
 */
export const STANDBY_RETRY_INITIAL_MS = 1_000;
export const STANDBY_RETRY_MAX_MS = 30_000;

interface State {
  delayMs: number;
  timer: NodeJS.Timeout | null;
}

/** Standby retry timers per set (`K`: the set). */
export class StandbyRetries<K extends object> {
  readonly #state = new Map<K, State>();
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #rebuild: (set: K) => void;

  /** `rebuild` starts a standby build for a set whose retry is due (or kicked). */
  constructor(options: { initialMs?: number; maxMs?: number; rebuild: (set: K) => void }) {
    this.#initialMs = options.initialMs ?? STANDBY_RETRY_INITIAL_MS;
    this.#maxMs = options.maxMs ?? STANDBY_RETRY_MAX_MS;
    this.#rebuild = options.rebuild;
  }

  /**
   * Schedules the next try for `set` after its current delay (then doubles the delay). Returns the delay, or
   * null when a try is already scheduled.
   */
  schedule(set: K): number | null {
    const state = this.#state.get(set) ?? { delayMs: this.#initialMs, timer: null };
    this.#state.set(set, state);
    if (state.timer) return null;
    const delay = state.delayMs;
    state.delayMs = Math.min(this.#maxMs, delay * 2);
    state.timer = setTimeout(() => {
      state.timer = null;
      this.#rebuild(set);
    }, delay);
    state.timer.unref();
    return delay;
  }

  /** A build for `set` starts now: its scheduled try, if any, is dropped (the delay is kept for the next). */
  starting(set: K): void {
    const state = this.#state.get(set);
    if (state?.timer) clearTimeout(state.timer);
    if (state) state.timer = null;
  }

  /** `set` got its standby: the next failure starts from the initial delay again. */
  succeeded(set: K): void {
    this.cancel(set);
  }

  /** The sets whose try is scheduled: each is rebuilt now (a relay became usable again). */
  kick(): K[] {
    const due = [...this.#state].filter(([, s]) => s.timer).map(([set]) => set);
    for (const set of due) {
      this.starting(set);
      this.#rebuild(set);
    }
    return due;
  }

  cancel(set: K): void {
    this.starting(set);
    this.#state.delete(set);
  }

  cancelAll(): void {
    for (const set of [...this.#state.keys()]) this.cancel(set);
  }
}
