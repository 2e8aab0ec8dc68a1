/**
 * An agent's A2A service: the card signed by its key, the durable inbound journal and the HTTP server, ready
 * for the agent runtime to add as port 80 of its onion (`tor start --a2a`, `agent.start({ a2a: true })`).
 * @module
 */
import { join } from 'node:path';
import type { AgentCard } from '@a2a-js/sdk';
import type { AgentKey } from '../identity/keys.js';
import type { OnionPortTarget } from '../tor/onion-service.js';
import { A2A_JSONRPC_PATH, A2A_ONION_PORT, a2aBaseUrl, buildA2aCard, signA2aCard } from './card.js';
import type { A2aTask } from './executor.js';
import { type A2aInboundMessage, A2aJournal } from './journal.js';
import { type A2aLimits, startA2aServer } from './server.js';

/** Files in the config dir. */
export const A2A_FILES = { socket: 'a2a.sock', journal: 'a2a-inbound.jsonl' } as const;

export interface AgentA2aOptions {
  key: AgentKey;
  configDir: string;
  /**
   * tor is not ours (attach mode) and may run as another user that cannot open our 0600 socket: listen on
   * 127.0.0.1 instead.
   */
  loopbackTcp?: boolean;
  /** The services of the agent's current advertisement (the card's skills). */
  services(): readonly string[];
  deliver(task: A2aTask): boolean;
  limits?: A2aLimits;
}

export interface AgentA2a {
  /** `http://<onion>` */
  readonly url: string;
  /** The onion port to add: 80 → the server. */
  readonly port: OnionPortTarget;
  card(): Promise<AgentCard>;
  inbound(): Promise<A2aInboundMessage[]>;
  close(): Promise<void>;
}

export async function startAgentA2a(options: AgentA2aOptions): Promise<AgentA2a> {
  const journal = new A2aJournal(join(options.configDir, A2A_FILES.journal));
  let cached: { services: string; card: AgentCard } | null = null;
  const card = async () => {
    const services = [...options.services()];
    const key = services.join(',');
    if (cached?.services !== key) {
      cached = {
        services: key,
        card: await signA2aCard(buildA2aCard({ key: options.key, services }), options.key),
      };
    }
    return cached.card;
  };
  const server = await startA2aServer({
    card,
    journal,
    host: options.key.onion,
    deliver: options.deliver,
    listen: options.loopbackTcp ? { host: '127.0.0.1' } : { path: join(options.configDir, A2A_FILES.socket) },
    ...(options.limits ? { limits: options.limits } : {}),
  });
  return {
    url: a2aBaseUrl(options.key.onion),
    port: { virtualPort: A2A_ONION_PORT, target: server.onionTarget },
    card,
    inbound: () => journal.list(),
    close: () => server.close(),
  };
}

export { A2A_JSONRPC_PATH };
