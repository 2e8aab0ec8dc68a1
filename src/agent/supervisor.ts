/**
 * The agent's supervisor: watches its tor and its onion and heals what it can.
 *
 * - **tor lost** — the handle notices at once (the child's exit event; in attach mode the control connection
 *   closing) and restarts its tor, or waits for the user's to come back (src/tor/daemon.ts). The supervisor
 *   tracks that state for `tor status` and the metrics, and once tor is back: retries the outbox at once
 *   (the failures behind its backoff were ours, not the peers'), probes the onion until a stranger could reach
 *   it again (the recovery time), re-joins the DHT and re-publishes the advertisement.
 * - **onion silently unreachable** — every `intervalMs` it probes its own onion through fresh circuits
 *   (self-probe.ts); after `failuresBeforeRepublish` failures in a row (the next probe comes sooner,
 *   `retryMs`) it publishes the onion again: `DEL_ONION` then `ADD_ONION` with the same key, which uploads a
 *   new descriptor with new introduction points. One failure alone never re-publishes: re-publishing drops
 *   the circuits of every open session, and a single failed rendezvous is common on a busy network.
 *
 * Detection anchors: BFD (RFC 5880) and SWIM-style failure detectors declare a failure after several missed
 * probes, not one; the probe interval is bounded below so an agent cannot load the HSDirs.
 * @module
 */
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import type { AgentMetrics, ProbeResultLabel, TorState } from '../metrics/agent-metrics.js';
import type { TorDiedEvent, TorHandle, TorRestartedEvent, TorWaitingEvent } from '../tor/daemon.js';
import { republishEntry } from '../tor/onion-service.js';
import { asMmogitError } from './_errors.js';
import { type ProbeResult, type ProbeTarget, probeOnion } from './self-probe.js';

const log = createLogger('mmogit:agent:supervisor');

/** Default time between self-probes while they succeed. */
export const DEFAULT_PROBE_INTERVAL_MS = 5 * 60_000;
/** Shortest probe interval accepted (each probe is one descriptor fetch and one rendezvous). */
export const MIN_PROBE_INTERVAL_MS = 1_000;
/** Default time to the next probe after a failed one. */
export const DEFAULT_PROBE_RETRY_MS = 30_000;
/** Default delay of the first probe after start (the descriptor was just uploaded). */
export const DEFAULT_FIRST_PROBE_MS = 10_000;
/** Consecutive failed probes that make the supervisor publish the onion again. */
export const DEFAULT_FAILURES_BEFORE_REPUBLISH = 2;
/** How long the supervisor keeps probing after a tor restart before it reports the onion unreachable. */
export const DEFAULT_HEAL_DEADLINE_MS = 120_000;

/** Settings of the self-probe (`AgentStartOptions.selfProbe`). */
export interface SelfProbeOptions {
  /** Time between probes while they succeed (default 5 min, at least 1 s). */
  intervalMs?: number;
  /** Time to the next probe after a failure (default 30 s). */
  retryMs?: number;
  /** Delay of the first probe after start (default 10 s). */
  firstProbeMs?: number;
  /** Bound on one probe (default 60 s). */
  timeoutMs?: number;
  /** Consecutive failures before re-publishing (default 2). */
  failuresBeforeRepublish?: number;
}

/** What `tor status` shows of the supervisor. */
export interface SupervisorStatus {
  state: TorState;
  /** When the state last changed (ISO 8601). */
  since: string;
  /** Attach mode, while waiting: the control target and the attempts so far. */
  waiting?: { control: string; attempts: number; error?: string };
  /** The last self-probe (absent before the first). */
  lastProbe?: ProbeResult & { time: string };
  /** When the next periodic probe is due (ISO 8601), if one is scheduled. */
  nextProbeAt?: string;
  consecutiveFailures: number;
  /** tor restarts (spawn) or reconnections (attach) so far. */
  restarts: number;
  republishes: number;
  /** The last recovery: from losing tor to the onion answering its own probe again. */
  lastRecovery?: { lostAt: string; reachableAt: string; ms: number };
}

/** What the supervisor heals with once tor is back (the runtime's parts). */
export interface HealActions {
  /** Retry every queued message now. */
  retryOutbox(): void;
  /** Dial the DHT bootstrap peers again and re-publish the advertisement (bounded; never throws). */
  rejoinDht(): Promise<void>;
}

export interface SupervisorDeps {
  tor: TorHandle;
  onion: ProbeTarget;
  metrics: AgentMetrics;
  heal: HealActions;
  /** Records a runtime event (`status().events`). */
  record: (type: string, detail: string) => void;
  /** `false`: no self-probe (tor is still watched and healed; no recovery time is measured). */
  options?: SelfProbeOptions | false;
  /** The probe (default: {@link probeOnion} through `tor`). */
  probe?: (signal: AbortSignal, timeoutMs: number) => Promise<ProbeResult>;
}

function probeLabel(r: ProbeResult): ProbeResultLabel {
  if (r.ok) return 'ok';
  if (r.stage === 'descriptor') return 'descriptor_failed';
  if (r.stage === 'connect') return 'connect_failed';
  return 'error';
}

/** See the module comment. Start it once the onion is published; stop it before tor. */
export class Supervisor {
  private state: TorState = 'up';
  private since = Date.now();
  private waiting: SupervisorStatus['waiting'];
  private lastProbe: ProbeResult | undefined;
  private nextProbeAt: number | undefined;
  private failures = 0;
  private restarts = 0;
  private republishes = 0;
  private lostAt: number | undefined;
  private lastRecovery: SupervisorStatus['lastRecovery'];
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<ProbeResult> | undefined;
  /** Heals in progress: a newer restart starts a new one, and the older stops at its next step. */
  private readonly healing = new Set<Promise<void>>();
  private generation = 0;
  private readonly stopper = new AbortController();
  private readonly settings: Required<SelfProbeOptions>;
  private readonly probes: boolean;
  private readonly listeners: { off(): void }[] = [];

  constructor(private readonly deps: SupervisorDeps) {
    this.probes = deps.options !== false;
    const o = deps.options || {};
    this.settings = {
      intervalMs: Math.max(MIN_PROBE_INTERVAL_MS, o.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS),
      retryMs: Math.max(MIN_PROBE_INTERVAL_MS, o.retryMs ?? DEFAULT_PROBE_RETRY_MS),
      firstProbeMs: Math.max(0, o.firstProbeMs ?? DEFAULT_FIRST_PROBE_MS),
      timeoutMs: o.timeoutMs ?? 60_000,
      failuresBeforeRepublish: Math.max(1, o.failuresBeforeRepublish ?? DEFAULT_FAILURES_BEFORE_REPUBLISH),
    };
  }

  /** Subscribes to the tor handle and schedules the first probe. */
  start(): void {
    const { tor } = this.deps;
    const died = (e: TorDiedEvent) => this.onDied(e);
    const waiting = (e: TorWaitingEvent) => this.onWaiting(e);
    const restarted = (e: TorRestartedEvent) => this.onRestarted(e);
    const failed = (e: MmogitError) => this.onRestartFailed(e);
    tor.on('died', died).on('waiting', waiting).on('restarted', restarted).on('restart-failed', failed);
    this.listeners.push({
      off: () => {
        tor
          .off('died', died)
          .off('waiting', waiting)
          .off('restarted', restarted)
          .off('restart-failed', failed);
      },
    });
    this.setState('up');
    this.deps.metrics.torBootstrap.set(1);
    this.schedule(this.settings.firstProbeMs);
  }

  /** Stops probing and healing (in-flight work ends with the stop signal). */
  async stop(): Promise<void> {
    if (this.stopper.signal.aborted) return;
    this.stopper.abort(new MmogitError('ERR_ABORTED', 'supervisor stopped'));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const l of this.listeners.splice(0)) l.off();
    this.setState('stopped');
    await Promise.allSettled([this.probing, ...this.healing]);
  }

  status(): SupervisorStatus {
    return {
      state: this.state,
      since: new Date(this.since).toISOString(),
      ...(this.waiting ? { waiting: { ...this.waiting } } : {}),
      ...(this.lastProbe
        ? { lastProbe: { ...this.lastProbe, time: new Date(this.lastProbe.at).toISOString() } }
        : {}),
      ...(this.nextProbeAt !== undefined ? { nextProbeAt: new Date(this.nextProbeAt).toISOString() } : {}),
      consecutiveFailures: this.failures,
      restarts: this.restarts,
      republishes: this.republishes,
      ...(this.lastRecovery ? { lastRecovery: { ...this.lastRecovery } } : {}),
    };
  }

  /**
   * Runs one probe now (or joins the one running) and acts on its result like a scheduled one. Resolves with
   * the result; never throws.
   */
  probeNow(): Promise<ProbeResult> {
    this.probing ??= this.runProbe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private setState(state: TorState): void {
    if (state !== this.state) {
      this.state = state;
      this.since = Date.now();
    }
    this.deps.metrics.setTorState(state);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextProbeAt = undefined;
    if (this.stopper.signal.aborted || this.state !== 'up' || !this.probes) return;
    this.nextProbeAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.nextProbeAt = undefined;
      void this.probeNow();
    }, delayMs);
    this.timer.unref();
  }

  private async probe(timeoutMs: number): Promise<ProbeResult> {
    const signal = this.stopper.signal;
    const r = this.deps.probe
      ? await this.deps.probe(signal, timeoutMs)
      : await probeOnion(this.deps.tor, this.deps.onion, { signal, timeoutMs });
    const m = this.deps.metrics;
    m.onionProbes.inc({ result: probeLabel(r) });
    m.onionProbeSuccess.set(r.ok ? 1 : 0);
    m.onionProbeTimestamp.set(r.at / 1000);
    m.onionProbeSeconds.observe(r.ms / 1000);
    this.lastProbe = r;
    return r;
  }

  /** A scheduled (or asked-for) probe, and what follows from it. */
  private async runProbe(): Promise<ProbeResult> {
    if (this.state !== 'up' || this.stopper.signal.aborted) {
      return (
        this.lastProbe ?? {
          ok: false,
          at: Date.now(),
          ms: 0,
          error: { code: 'ERR_TOR_CONTROL_CLOSED', message: `tor is ${this.state}` },
        }
      );
    }
    const r = await this.probe(this.settings.timeoutMs);
    if (this.stopper.signal.aborted) return r;
    if (r.ok) {
      this.failures = 0;
      this.schedule(this.settings.intervalMs);
      return r;
    }
    // A probe that failed because tor went away meanwhile is the tor handle's to heal, not ours.
    if (this.state !== 'up') return r;
    this.failures += 1;
    log('self-probe failed (%d in a row) at %s: %s', this.failures, r.stage, r.error?.message);
    this.deps.record('probe-failed', `${r.stage ?? 'probe'}: ${r.error?.code ?? 'ERR_INTERNAL'}`);
    if (this.failures >= this.settings.failuresBeforeRepublish) {
      await this.republish('probe');
      this.failures = 0;
    }
    this.schedule(this.settings.retryMs);
    return r;
  }

  /** DEL_ONION + ADD_ONION with the same key: a new descriptor with new introduction points. */
  private async republish(reason: 'probe' | 'tor_restart'): Promise<void> {
    const { tor, onion, metrics } = this.deps;
    const entry = [...tor.onions].find((e) => e.serviceId === onion.serviceId);
    if (!entry) return;
    try {
      const ctl = tor.controller;
      await ctl.delOnion(onion.serviceId, { signal: this.stopper.signal }).catch((e: unknown) => {
        // 552: tor no longer knows it — exactly the fault being repaired.
        if ((e as { statusCode?: number }).statusCode !== 552) throw e;
      });
      await republishEntry(ctl, entry, { signal: this.stopper.signal });
      this.republishes += 1;
      metrics.onionRepublishes.inc({ reason, result: 'ok' });
      this.deps.record('onion-republished', reason);
      log('onion %s published again (%s)', onion.serviceId, reason);
    } catch (e) {
      const err = asMmogitError(e);
      metrics.onionRepublishes.inc({ reason, result: 'error' });
      this.deps.record('onion-republish-failed', `${err.code}: ${err.message}`);
    }
  }

  private onDied(e: TorDiedEvent): void {
    this.lostAt ??= Date.now();
    this.deps.metrics.torDeaths.inc();
    this.deps.metrics.torBootstrap.set(0);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextProbeAt = undefined;
    const attach = this.deps.tor.mode === 'attach';
    this.setState(e.willRestart ? (attach ? 'waiting' : 'restarting') : 'failed');
    log(
      'tor lost (%s); %s',
      e.signal ?? e.code ?? 'control connection closed',
      e.willRestart ? 'healing' : 'giving up',
    );
  }

  private onWaiting(e: TorWaitingEvent): void {
    this.setState('waiting');
    this.waiting = { control: e.control, attempts: e.attempt, ...(e.error ? { error: e.error } : {}) };
    // The first attempt is news; later ones only every minute or so, to keep the log readable.
    if (e.attempt === 1 || e.attempt % 60 === 0) {
      const line = `waiting for tor at ${e.control} (attempt ${e.attempt}${e.error ? `: ${e.error}` : ''})`;
      this.deps.record('tor-waiting', line);
      process.stderr.write(`mmogit: ${line}\n`);
    }
  }

  private onRestarted(e: TorRestartedEvent): void {
    this.restarts += 1;
    this.waiting = undefined;
    this.deps.metrics.torRestarts.inc({ result: 'ok' });
    this.deps.metrics.torBootstrap.set(1);
    this.setState('up');
    if (e.failed.length > 0)
      this.deps.record('onion-republish-failed', e.failed.map((f) => f.code).join(','));
    if (e.republished.includes(this.deps.onion.serviceId)) {
      this.deps.metrics.onionRepublishes.inc({ reason: 'tor_restart', result: 'ok' });
    }
    const h: Promise<void> = this.heal(++this.generation).finally(() => this.healing.delete(h));
    this.healing.add(h);
  }

  private onRestartFailed(e: MmogitError): void {
    this.deps.metrics.torRestarts.inc({ result: 'failed' });
    this.setState('failed');
    this.deps.record('tor-failed', e.message);
    process.stderr.write(`mmogit: tor is gone and could not be restarted: ${e.message}\n`);
  }

  /**
   * After tor is back: the outbox first (sending needs only our tor), then probes until the onion answers
   * (bounded), then the DHT. The recovery time runs from the loss to that first good probe.
   */
  private async heal(generation: number): Promise<void> {
    const { heal } = this.deps;
    const current = () =>
      generation === this.generation && !this.stopper.signal.aborted && this.state === 'up';
    heal.retryOutbox();
    const deadline = Date.now() + DEFAULT_HEAL_DEADLINE_MS;
    let r: ProbeResult | undefined;
    while (this.probes && current() && Date.now() < deadline) {
      r = await this.probe(Math.min(this.settings.timeoutMs, Math.max(1_000, deadline - Date.now())));
      if (r.ok || !current()) break;
      await new Promise((res) => setTimeout(res, 500).unref());
    }
    // tor was lost again meanwhile (or we stopped): the newer heal measures from the first loss.
    if (!current()) return;
    const lostAt = this.lostAt ?? Date.now();
    this.lostAt = undefined;
    if (r?.ok) {
      const ms = r.at - lostAt;
      this.lastRecovery = {
        lostAt: new Date(lostAt).toISOString(),
        reachableAt: new Date(r.at).toISOString(),
        ms,
      };
      this.deps.metrics.torRecoverySeconds.observe(ms / 1000);
      this.deps.record('onion-reachable', `${ms} ms after tor was lost`);
      this.failures = 0;
    } else if (this.probes) {
      this.deps.record('onion-unreachable', 'the onion did not answer its probe after tor came back');
    }
    // The periodic probe resumes now; re-joining the DHT (bounded, up to a minute or two) runs beside it.
    this.schedule(r?.ok ? this.settings.intervalMs : this.settings.retryMs);
    // Bounded by itself; a stop does not wait for it (the discovery step's own cleanup aborts it).
    const stopped = new Promise<void>((res) =>
      this.stopper.signal.addEventListener('abort', () => res(), { once: true }),
    );
    await Promise.race([heal.rejoinDht().catch(() => {}), stopped]);
  }
}
