/**
 * The SOCKS isolation key of each onion this node dials, and a new one after a dial fails.
 *
 * Every dial to an onion uses its own isolation key (tor's `IsolateSOCKSAuth`, on by default for a SocksPort;
 * tor-spec: streams with different SOCKS credentials never share a circuit), so peers do not share circuits.
 * Keeping that key fixed has a cost when the peer's onion service restarts: a client that sent an
 * INTRODUCE1 just as the old instance died holds a rendezvous circuit whose introduction was acknowledged
 * (rend-spec-v3 §3.3) but that no service will ever join, and tor attaches every later stream of the same
 * isolation to that pending circuit ("pending-join circ already here, with intro ack. Stalling.") until it
 * expires it — 20–45 s measured on the private network, the slow outbox drains after a receiver's kill -9 in
 * docs/reliability.md. A failed dial therefore moves the onion to a new key: the next dial gets fresh
 * introduction and rendezvous circuits (and re-checks the cached descriptor), while a healthy peer keeps
 * its key and its warm circuits.
 * @module
 */

/** How many onions keep a bumped key; older entries fall back to the base key (a new circuit at worst). */
const MAX_TRACKED = 4096;

export class OnionIsolation {
  /** serviceId → how many failed dials moved its key; insertion order is least recently bumped first. */
  readonly #generation = new Map<string, number>();

  /** The isolation key of the next dial to `serviceId`. */
  key(serviceId: string): string {
    const g = this.#generation.get(serviceId);
    return g === undefined ? serviceId : `${serviceId}~${g}`;
  }

  /** A dial to `serviceId` failed: its next dial uses a new key (so new circuits). */
  failed(serviceId: string): void {
    const g = (this.#generation.get(serviceId) ?? 0) + 1;
    this.#generation.delete(serviceId);
    this.#generation.set(serviceId, g);
    if (this.#generation.size > MAX_TRACKED) {
      const oldest = this.#generation.keys().next().value;
      if (oldest !== undefined) this.#generation.delete(oldest);
    }
  }
}
