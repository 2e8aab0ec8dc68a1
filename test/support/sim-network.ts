/**
 * Test support (not shipped in src/): many real libp2p agents (noise, yamux, identify, our kad-dht options, so
 * our Discovery runs unchanged) on the simulated tor-like transport of test/support/sim-transport.ts, in one
 * process. Only the transport is simulated; the DHT, the upgrade and Discovery are the product's code.
 * @module
 */
import '../../src/_polyfill.js';
import { bootstrapDialer } from '../../src/discovery/bootstrap.js';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/index.js';
import { type LoopbackAgent, startLoopbackAgent } from './loopback.js';
import { type SimNetwork, simTransport } from './sim-transport.js';

/** A sim agent has the loopback agent's shape: the same tests and benchmarks drive either. */
export type SimAgent = LoopbackAgent;

/** Starts one agent on `net` whose PeerId is `key` (a random key by default). */
export function startSimAgent(net: SimNetwork, key: AgentKey = AgentKey.random()): Promise<SimAgent> {
  return startLoopbackAgent(key, {
    transport: simTransport(net),
    connectionManager: {
      // every inbound connection comes from the same pseudo host, as behind tor
      inboundConnectionThreshold: 100_000,
      maxConnections: 2_000,
      // the public profile's cold set-up is 13–20 s: a dial must be allowed longer than that
      dialTimeout: 60_000,
    },
  });
}

export interface SimJoinOptions {
  /** How many of the first agents are the bootstrap agents every other one dials (default 2). */
  bootstraps?: number;
  /** Joins at a time (default 10): the nodes share one event loop. */
  joinConcurrency?: number;
  /** Each join's budget (bootstrapDialer's timeoutMs; default 120 s). */
  joinTimeoutMs?: number;
  /** The whole start's bound. */
  signal?: AbortSignal;
  /** Called with each join's duration, ms. */
  onJoined?: (index: number, ms: number) => void;
}

/**
 * Starts `n` agents on `net`, then joins them through the first `bootstraps` (their join also runs the
 * self-lookup, as an agent's does). Resolves once every node joined; throws `ERR_TIMEOUT`/`ERR_ABORTED` from
 * the signal, or when a node could reach no bootstrap agent.
 */
export async function startSimNetwork(
  net: SimNetwork,
  n: number,
  options: SimJoinOptions = {},
): Promise<{ agents: SimAgent[]; stop: () => Promise<void> }> {
  const agents: SimAgent[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(agents.map((a) => Promise.resolve(a.node.stop()).catch(() => {})));
  };
  try {
    for (let i = 0; i < n; i += 50) {
      options.signal?.throwIfAborted();
      const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => startSimAgent(net)));
      agents.push(...batch);
    }
    await joinSimAgents(agents, 0, options);
    return { agents, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Joins `agents[from..]` through the first `bootstraps` agents, `joinConcurrency` at a time. */
export async function joinSimAgents(
  agents: SimAgent[],
  from: number,
  options: SimJoinOptions = {},
): Promise<void> {
  const boot = agents.slice(0, Math.max(1, options.bootstraps ?? 2)).map((a) => a.addr);
  const concurrency = options.joinConcurrency ?? 10;
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < agents.length) {
      options.signal?.throwIfAborted();
      const i = next++;
      const a = agents[i] as SimAgent;
      const t0 = performance.now();
      const r = await bootstrapDialer(a.node, boot, {
        timeoutMs: options.joinTimeoutMs ?? 120_000,
        dialTimeoutMs: 60_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (r.connected.length === 0 && agents.length > 1)
        throw new MmogitError('ERR_TIMEOUT', `sim agent ${i} could not join`);
      options.onJoined?.(i, performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
