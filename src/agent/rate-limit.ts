/**
 * Token buckets for inbound rate limits, one bucket per peer.
 * @module
 */

/** Bucket size and refill rate. */
export interface RateLimitOptions {
  /** Burst size: how many requests a peer may send at once. */
  capacity: number;
  /** Tokens added per second (the sustained rate). */
  refillPerSecond: number;
}

/** Default inbound limit per peer: bursts of 50 messages, 10 per second sustained. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { capacity: 50, refillPerSecond: 10 };

/**
 * A token bucket (continuous refill). `take()` spends one token if there is one.
 *
 * @example
 * const b = new TokenBucket({ capacity: 2, refillPerSecond: 1 });
 * b.take(); b.take(); b.take() // true, true, false
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
      throw new RangeError('rate limit needs capacity >= 1 and refillPerSecond > 0');
    }
    this.tokens = options.capacity;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last);
    this.last = t;
    this.tokens = Math.min(
      this.options.capacity,
      this.tokens + (elapsed / 1000) * this.options.refillPerSecond,
    );
  }

  /** Spends `n` tokens and returns true, or returns false (and spends nothing) when there are too few. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens are available (0 if they are now). */
  waitMs(n = 1): number {
    this.refill();
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.options.refillPerSecond) * 1000);
  }

  /** True when the bucket is full (idle long enough to forget). */
  get full(): boolean {
    this.refill();
    return this.tokens >= this.options.capacity;
  }
}

/**
 * One {@link TokenBucket} per key (peer onion). Full buckets are dropped when the map grows past `maxKeys`, so
 * a flood of distinct peers cannot grow memory without bound.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly options: RateLimitOptions = DEFAULT_RATE_LIMIT,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends one token of `key`'s bucket; false when `key` is over its limit. */
  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.prune();
      bucket = new TokenBucket(this.options, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }

  /** Milliseconds until `key` may send again. */
  retryAfterMs(key: string): number {
    return this.buckets.get(key)?.waitMs() ?? 0;
  }

  private prune(): void {
    for (const [k, b] of this.buckets) if (b.full) this.buckets.delete(k);
    // Still full of active peers: forget the oldest half rather than grow.
    if (this.buckets.size >= this.maxKeys) {
      let drop = Math.ceil(this.buckets.size / 2);
      for (const k of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(k);
      }
    }
  }
}
