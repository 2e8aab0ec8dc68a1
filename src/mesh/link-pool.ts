/**
 * The client's links to guards (docs/mesh.md §Circuits): one link per guard, reused by every circuit through it,
 * each dialled with a fresh throwaway key so no guard can tie two clients' links to one identity.
 * @module
 */
import { AgentKey } from '../identity/keys.js';
import { dialLink, type Link, type LinkOptions, type OnionChannelDialer, type RelayAddress } from './link.js';

/** The client's links to guards, reused across its circuits; each dialled with a throwaway key. */
export class LinkPool {
  readonly #links = new Map<string, Link>();
  readonly #dialing = new Map<string, Promise<Link>>();
  readonly #options: LinkOptions & { onionDialer?: OnionChannelDialer | undefined };

  constructor(options: LinkOptions & { onionDialer?: OnionChannelDialer | undefined } = {}) {
    this.#options = options;
  }

  get links(): Link[] {
    return [...this.#links.values()];
  }

  async get(relay: RelayAddress, signal: AbortSignal): Promise<Link> {
    const have = this.#links.get(relay.onion);
    if (have && !have.closed) return have;
    let pending = this.#dialing.get(relay.onion);
    if (!pending) {
      pending = dialLink(relay, { ...this.#options, self: AgentKey.random(), signal }).then((link) => {
        this.#links.set(relay.onion, link);
        link.onClose(() => {
          if (this.#links.get(relay.onion) === link) this.#links.delete(relay.onion);
        });
        return link;
      });
      this.#dialing.set(relay.onion, pending);
      const clear = () => this.#dialing.delete(relay.onion);
      pending.then(clear, clear);
    }
    return pending;
  }

  /** Closes links that carry no circuit. */
  closeIdle(): void {
    for (const l of this.#links.values()) if (l.circuitCount === 0) l.close();
  }

  closeAll(): void {
    for (const l of this.#links.values()) l.close();
    this.#links.clear();
  }
}
