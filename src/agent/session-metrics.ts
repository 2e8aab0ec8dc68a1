/**
 * Counting post-quantum session handshakes and open sessions into the agent's metrics, for the two places
 * that make sessions (messaging links, memory sync), without either knowing about Prometheus.
 * @module
 */
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import { reasonLabel } from '../metrics/labels.js';
import type { MessagingSecurity, MessagingSession } from './messaging-types.js';

export type HandshakeRole = 'initiator' | 'responder';

/**
 * Runs one handshake and counts it: `mmogit_pq_handshakes_total` and its duration on success,
 * `mmogit_pq_handshake_failures_total` by error code on failure. On success `mmogit_sessions_open` goes up
 * by one; the returned `release` takes it down again (once, however often it is called).
 */
export async function countHandshake<S extends { readonly suite?: string }>(
  metrics: AgentMetrics | undefined,
  role: HandshakeRole,
  run: () => Promise<S>,
): Promise<{ session: S; release: () => void }> {
  if (!metrics) return { session: await run(), release: () => {} };
  const t0 = performance.now();
  let session: S;
  try {
    session = await run();
  } catch (e) {
    metrics.pqHandshakeFailures.inc({ role, reason: reasonLabel((e as { code?: unknown }).code) });
    throw e;
  }
  metrics.pqHandshakes.inc({ role, suite: suiteLabel(session.suite) });
  metrics.pqHandshakeSeconds.observe({ role }, (performance.now() - t0) / 1000);
  metrics.sessionsOpen.inc();
  let released = false;
  return {
    session,
    release: () => {
      if (released) return;
      released = true;
      metrics.sessionsOpen.dec();
    },
  };
}

/** The suite as a bounded label: the two suites the handshake negotiates, anything else `other`. */
function suiteLabel(suite: string | undefined): string {
  if (suite === undefined) return 'unknown';
  return /^[a-z0-9+_-]{1,40}$/i.test(suite) ? suite : 'other';
}

/**
 * The messenger's session layer with every handshake counted; a session counts as open until the messenger
 * closes it (a link always closes its session when it ends, whoever ended it).
 */
export function countedSecurity(inner: MessagingSecurity, metrics: AgentMetrics): MessagingSecurity {
  const wrap = async (
    role: HandshakeRole,
    run: () => Promise<MessagingSession>,
  ): Promise<MessagingSession> => {
    const { session, release } = await countHandshake(metrics, role, run);
    return {
      get peer() {
        return session.peer;
      },
      ...(session.handshakeMs !== undefined ? { handshakeMs: session.handshakeMs } : {}),
      ...(session.suite !== undefined ? { suite: session.suite } : {}),
      send: (payload) => session.send(payload),
      receive: () => session.receive(),
      close: async () => {
        release();
        await session.close();
      },
    };
  };
  return {
    initiate: (channel, key, options) => wrap('initiator', () => inner.initiate(channel, key, options)),
    accept: (channel, key, options) => wrap('responder', () => inner.accept(channel, key, options)),
  };
}
