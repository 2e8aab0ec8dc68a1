// Clock skew on either side, ± minutes and ± days, for advertisements and messages, with injected clocks
// (the real verifier and the real messengers over loopback sockets with real PQ sessions). The table of what
// happens is in docs/reliability.md; each row is one case here.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_SKEW_MS } from '../../src/agent/messaging.js';
import {
  ADVERT_DEFAULT_TTL_MS,
  ADVERT_MAX_SKEW_MS,
  createAdvertisement,
  verifyAdvertisement,
} from '../../src/discovery/advertisement.js';
import { AgentKey } from '../../src/identity/keys.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { agentsPerTest, collect, type Directory, waitFor } from '../agent/messaging-helpers.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

describe('advertisements under clock skew (TTL 30 min, future tolerance 2 min)', () => {
  const key = AgentKey.random();
  const reader = Date.UTC(2026, 5, 1, 12);
  // publisher's clock minus the reader's → what the reader's verifier says
  const cases: [string, 'ok' | 'future' | 'expired', number][] = [
    ['publisher 1 min ahead', 'ok', MIN],
    ['publisher 2 min ahead (the limit)', 'ok', ADVERT_MAX_SKEW_MS],
    ['publisher 5 min ahead', 'future', 5 * MIN],
    ['publisher 1 day ahead', 'future', DAY],
    ['publisher 1 min behind', 'ok', -MIN],
    ['publisher 29 min behind', 'ok', -29 * MIN],
    ['publisher 31 min behind (past the TTL)', 'expired', -31 * MIN],
    ['publisher 1 day behind', 'expired', -DAY],
  ];
  it.each(cases)('%s: %s', (_what, outcome, skew) => {
    const ad = createAdvertisement(key, { services: ['memory_sync'], now: reader + skew });
    expect(ad.advert.expiresAt - ad.advert.issuedAt).toBe(ADVERT_DEFAULT_TTL_MS);
    const verdict = (() => {
      try {
        verifyAdvertisement(ad.bytes, { now: reader });
        return 'ok';
      } catch (e) {
        expect(e).toMatchObject({ code: 'ERR_INVALID_RECORD' });
        return (e as { details: { reason: string } }).details.reason;
      }
    })();
    expect(verdict).toBe(outcome);
  });
});

describe('messages under clock skew (future tolerance 5 min, oldest accepted 30 days)', () => {
  const { agent } = agentsPerTest();
  /** A clock `offset` ms off the real one, movable during the test. */
  const clock = (offset: number) => {
    const c = { offset, now: () => Date.now() + c.offset };
    return c;
  };

  const cases: [string, 'delivered' | 'refused', number, number][] = [
    ['sender 1 min ahead', 'delivered', MIN, 0],
    ['sender 10 min ahead', 'refused', 10 * MIN, 0],
    ['sender 1 day ahead', 'refused', DAY, 0],
    ['sender 1 day behind', 'delivered', -DAY, 0],
    ['sender 31 days behind', 'refused', -31 * DAY, 0],
    ['receiver 10 min ahead', 'delivered', 0, 10 * MIN],
    ['receiver 1 day behind', 'refused', 0, -DAY],
    ['receiver 29 days ahead', 'delivered', 0, 29 * DAY],
  ];
  it.each(cases)('%s → %s', async (_what, outcome, senderSkew, receiverSkew) => {
    expect(DEFAULT_MAX_FUTURE_SKEW_MS).toBe(5 * MIN);
    expect(DEFAULT_MAX_AGE_MS).toBe(30 * DAY);
    const dir: Directory = new Map();
    const rc = clock(receiverSkew);
    const metrics = new AgentMetrics();
    const receiver = await agent(dir, { deps: { now: rc.now, metrics } });
    const sender = await agent(dir, { deps: { now: clock(senderSkew).now } });
    const got = collect(receiver);
    const r = await sender.messenger.send(receiver.key.onion, `skew ${senderSkew - receiverSkew}`);
    if (outcome === 'delivered') {
      expect(r.status).toBe('delivered');
      await waitFor(() => got.length === 1, 5_000, 'the message');
      expect(got[0]!.timestamp - Date.now()).toBeCloseTo(senderSkew, -4);
      return;
    }
    // Refused, not lost: it stays queued (retried with backoff), nothing reaches the application.
    expect(r.status).toBe('queued');
    await new Promise((res) => setTimeout(res, 600));
    expect(got).toEqual([]);
    expect(sender.messenger.pending().map((p) => p.id)).toEqual([r.id]);
    expect(await metrics.registry.metrics()).toMatch(
      /^mmogit_messages_refused_total\{direction="in",reason="ERR_UNTRUSTED_DATA"\} [1-9]/m,
    );
    // Once the clocks agree (here: the receiver's is set right), the next retry delivers it, once.
    rc.offset = senderSkew;
    await waitFor(() => got.length === 1, 10_000, 'delivery once the clocks agree');
    await waitFor(() => sender.messenger.pending().length === 0, 5_000, 'the outbox to empty');
    expect(got.map((m) => m.id)).toEqual([r.id]);
  });
});
