/**
 * The client's hold-off of relays it lost (docs/mesh.md §Self-healing, Plan): which relays a new path avoids
 * for now, when one leaves the hold-off early, and when a small relay set tries its held-off relays again
 * rather than fail for want of a path.
 *
 * Why not a plain "down until" time: a relay that restarts (kill, crash, redeploy) and says so with a new
 * descriptor, or that a circuit has just been built through, is alive; holding it off for the full time locked
 * most of a small set out (a kill every ~3 s over 16 relays kept ~11 held off, so no disjoint standby path
 * was left). A relay that is still dead keeps its hold-off and is tried no more often than a doubling gap.
 * @module
 */
import type { RelayInfo } from './circuit.js';

/** A relay that was lost is not picked again for this long, unless it shows it is alive (see the module). */
export const RELAY_HOLD_OFF_MS = 30_000;
/**
 * In a small set (fewer usable relays than a primary and a standby leg need, with one to spare), a held-off
 * relay may be tried again this long after it was lost, the gap doubling after every further try up to the
 * hold-off itself: a relay that stays dead costs one dial per gap, not one per build.
 */
export const EARLY_RETRY_INITIAL_MS = 1_000;

export interface HoldOffOptions {
  /** Default {@link RELAY_HOLD_OFF_MS}. */
  ms?: number;
  /** Default {@link EARLY_RETRY_INITIAL_MS}. */
  earlyRetryMs?: number;
  /** Milliseconds now (tests); default `Date.now`. */
  now?: () => number;
}

interface Held {
  /** The address that failed: a new one is a new chance. */
  address: string;
  until: number;
  /** The next early try is not before this, and the one after waits `gapMs` more. */
  nextTryAt: number;
  gapMs: number;
}

/** How the client reaches `relay` (a new one means the relay was restarted or moved). */
export function addressOf(relay: Pick<RelayInfo, 'onion' | 'tcp'>): string {
  return relay.tcp ? `${relay.tcp.host}:${relay.tcp.port}` : `onion ${relay.onion}`;
}

/** The relays a client holds off, by onion. */
export class RelayHoldOff {
  readonly #held = new Map<string, Held>();
  readonly #ms: number;
  readonly #earlyMs: number;
  readonly #now: () => number;

  constructor(options: HoldOffOptions = {}) {
    this.#ms = options.ms ?? RELAY_HOLD_OFF_MS;
    this.#earlyMs = Math.min(this.#ms, options.earlyRetryMs ?? EARLY_RETRY_INITIAL_MS);
    this.#now = options.now ?? Date.now;
  }

  /** Whether `onion` is held off now. */
  has(onion: string): boolean {
    const h = this.#held.get(onion);
    if (h && h.until <= this.#now()) this.#held.delete(onion);
    return this.#held.has(onion);
  }

  get size(): number {
    this.#purge();
    return this.#held.size;
  }

  /**
   * `failed` (the descriptor the failing circuit used) was lost or could not be reached. Ignored when the mesh
   * already knows the relay at another address (`current`): the old address failed, not the new one.
   */
  lost(failed: RelayInfo, current: RelayInfo | undefined): void {
    const address = addressOf(failed);
    if (current && addressOf(current) !== address) return;
    const now = this.#now();
    const h = this.#held.get(failed.onion);
    if (h && h.address === address && h.until > now) {
      h.until = now + this.#ms;
      h.nextTryAt = Math.max(h.nextTryAt, now + h.gapMs);
      return;
    }
    this.#held.set(failed.onion, {
      address,
      until: now + this.#ms,
      nextTryAt: now + this.#earlyMs,
      gapMs: this.#earlyMs,
    });
  }

  /** `onion` answered (a circuit was built through it): it leaves the hold-off. True if it was held off. */
  alive(onion: string): boolean {
    return this.#held.delete(onion);
  }

  /**
   * The mesh was given `relay`'s descriptor again: a new address (the relay restarted or moved and published
   * it) releases the hold-off; the same one does not (an advert outlives its relay). True if it was released.
   */
  readded(relay: RelayInfo): boolean {
    const h = this.#held.get(relay.onion);
    if (!h || h.address === addressOf(relay)) return false;
    this.#held.delete(relay.onion);
    return true;
  }

  /** A path through held-off `onion` is being tried early: the next early try waits a doubled gap. */
  trying(onion: string): void {
    const h = this.#held.get(onion);
    if (!h) return;
    h.nextTryAt = this.#now() + h.gapMs;
    h.gapMs = Math.min(this.#ms, h.gapMs * 2);
  }

  /**
   * The onions a new path must avoid now: every held-off relay while at least `minUsable` of `relays` are not
   * held off and `usable`; below that, only those whose early try is not yet due.
   */
  avoid(relays: readonly RelayInfo[], usable: (r: RelayInfo) => boolean, minUsable: number): string[] {
    this.#purge();
    if (this.#held.size === 0) return [];
    const free = relays.filter((r) => !this.#held.has(r.onion) && usable(r)).length;
    const now = this.#now();
    const out: string[] = [];
    for (const [onion, h] of this.#held) if (free >= minUsable || h.nextTryAt > now) out.push(onion);
    return out;
  }

  #purge(): void {
    const now = this.#now();
    for (const [o, h] of this.#held) if (h.until <= now) this.#held.delete(o);
  }
}
