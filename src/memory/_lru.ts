/**
 * A least-recently-used map bounded by a total cost rather than a count. The tree cache needs this: every new
 * entry rewrites the five trees on its path, so a store that only ever writes keeps superseded trees of up to
 * 257 entries each; a count bound (or none) lets that grow by kilobytes per message for the agent's lifetime.
 * Map keeps insertion order, so re-inserting on a hit makes the first key the least recently used.
 * @module
 */
export class CostLru<K, V> {
  readonly #map = new Map<K, { value: V; cost: number }>();
  #total = 0;

  /** @param budget the total cost kept; one item costing more than it is still kept, alone. */
  constructor(readonly budget: number) {}

  get size(): number {
    return this.#map.size;
  }

  /** The cost of what is kept now. */
  get cost(): number {
    return this.#total;
  }

  get(key: K): V | undefined {
    const hit = this.#map.get(key);
    if (!hit) return undefined;
    this.#map.delete(key);
    this.#map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, cost: number): void {
    const old = this.#map.get(key);
    if (old) {
      this.#total -= old.cost;
      this.#map.delete(key);
    }
    this.#map.set(key, { value, cost });
    this.#total += cost;
    for (const [k, v] of this.#map) {
      if (this.#total <= this.budget || k === key) break;
      this.#map.delete(k);
      this.#total -= v.cost;
    }
  }
}
