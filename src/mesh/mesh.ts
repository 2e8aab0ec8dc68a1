/**
 * The mesh as the SDK sees it (`agent.mesh`, `mmogit mesh …`): the relays it knows, their reputation, stream
 * sets with a primary and a warm standby leg each, a SOCKS5 entry, and typed events. Relaying is a separate
 * {@link Relay} the same object can start.
 * @module
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { createLogger } from '../_log.js';
import { withTimeout } from '../errors.js';
import { DEFAULT_BEACON_INTERVAL_MS, DEFAULT_HOPS, MAX_HOPS, MIN_HOPS } from './_wire.js';
import type { Circuit, RelayInfo } from './circuit.js';
import { ClientSet } from './conflux.js';
import { MeshError } from './errors.js';
import { parseTarget, type Target } from './exit-policy.js';
import { type HoldOffOptions, RelayHoldOff } from './hold-off.js';
import { BUILD_ATTEMPTS, LegBuilder } from './leg-builder.js';
import type { OnionChannelDialer } from './link.js';
import { LinkPool } from './link-pool.js';
import { type MeshEvents, nowEpochMs } from './mesh-events.js';
import { MeshMetrics } from './metrics.js';
import { mayExit } from './path.js';
import { Reputation } from './reputation.js';
import { type SocksServer, startSocksServer } from './socks.js';
import { StandbyRetries } from './standby-retry.js';
import type { MeshStream } from './streams.js';

const log = createLogger('mmogit:mesh');

export { type MeshEvents, nowEpochMs } from './mesh-events.js';
export { STANDBY_RETRY_INITIAL_MS, STANDBY_RETRY_MAX_MS } from './standby-retry.js';

export interface MeshOptions {
  /** Where reputation lives (`<configDir>/mesh/reputation.json`); none: in memory. */
  configDir?: string;
  relays?: readonly RelayInfo[];
  /** Hops per circuit (1–5, default 3). */
  hops?: number;
  /** Beacon and keepalive interval (default 500 ms). */
  intervalMs?: number;
  /** Keep a warm standby leg per set (default true). */
  standby?: boolean;
  /** Reaches relays that have no TCP address (a libp2p stream over tor). */
  onionDialer?: OnionChannelDialer;
  /** Finds more relays (the DHT); called when the known ones cannot make a path. */
  discover?: (signal: AbortSignal) => Promise<RelayInfo[]>;
  metrics?: MeshMetrics;
  /** Backoff of standby rebuilds after a failure (default 1 s, doubling to 30 s). */
  standbyRetry?: { initialMs?: number; maxMs?: number };
  /** How long a lost relay is held off, and a small set's early tries of it (default 30 s; 1 s doubling). */
  holdOff?: Omit<HoldOffOptions, 'now'>;
}

/** A summary of one live leg. */
export interface CircuitInfo {
  serial: number;
  role: 'primary' | 'standby';
  exit: string;
  path: string[];
  streams: number;
  rttMs: (number | null)[];
}

/** The mesh client. */
export class Mesh extends EventEmitter<MeshEvents> {
  readonly metrics: MeshMetrics;
  readonly hops: number;
  readonly intervalMs: number;
  readonly #options: MeshOptions;
  readonly #relays = new Map<string, RelayInfo>();
  readonly #pool: LinkPool;
  readonly #sets = new Set<ClientSet>();
  readonly #refused = new Set<string>();
  readonly #socks = new Set<SocksServer>();
  readonly #reputation: Promise<Reputation>;
  #closed = false;
  /** When each set's primary was last detected failed, for recovery timing. */
  readonly #detected = new WeakMap<ClientSet, number>();
  /** Relays lost recently: not picked again for a while, unless they show they are alive. */
  readonly #holdOff: RelayHoldOff;
  /** Legs being built per set. */
  readonly #building = new WeakMap<ClientSet, number>();
  /** Per set: the next standby retry's delay and its timer. */
  readonly #retries: StandbyRetries<ClientSet>;
  /** Aborted by {@link close}: ends builds in flight and standby retries. */
  readonly #stop = new AbortController();
  readonly #legs: LegBuilder;

  constructor(options: MeshOptions = {}) {
    super();
    this.#options = options;
    this.hops = options.hops ?? DEFAULT_HOPS;
    if (!Number.isInteger(this.hops) || this.hops < MIN_HOPS || this.hops > MAX_HOPS) {
      throw new MeshError('protocol', `hops must be ${MIN_HOPS}–${MAX_HOPS}`, {
        details: { hops: this.hops },
      });
    }
    this.intervalMs = options.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS;
    this.metrics = options.metrics ?? new MeshMetrics();
    this.#pool = new LinkPool({ intervalMs: this.intervalMs, onionDialer: options.onionDialer });
    this.#holdOff = new RelayHoldOff(options.holdOff);
    this.#retries = new StandbyRetries<ClientSet>({
      ...options.standbyRetry,
      rebuild: (set) => {
        if (!set.standby?.alive) void this.#replenish(set, set.legRelays());
      },
    });
    for (const r of options.relays ?? []) this.addRelay(r);
    this.#reputation = Reputation.open(
      options.configDir ? join(options.configDir, 'mesh', 'reputation.json') : undefined,
    );
    this.#legs = new LegBuilder({
      hops: this.hops,
      intervalMs: this.intervalMs,
      pool: this.#pool,
      metrics: this.metrics,
      reputation: this.#reputation,
      holdOff: this.#holdOff,
      refused: this.#refused,
      relays: () => this.relays,
      relay: (onion) => this.#relays.get(onion),
      addRelay: (r) => this.addRelay(r),
      discover: options.discover,
      kickRetries: () => this.#kickRetries(),
      onSuspect: (circ, hop, why) => this.#onSuspect(circ, hop, why),
      events: this,
    });
  }

  /**
   * Adds (or updates) a relay the mesh may use. A relay new to the mesh, or a held-off one re-added with a new
   * address (it restarted or moved), starts the standby builds that wait for a retry at once.
   */
  addRelay(relay: RelayInfo): void {
    const known = this.#relays.has(relay.onion);
    this.#relays.set(relay.onion, relay);
    if (!known || this.#holdOff.readded(relay)) this.#kickRetries();
  }

  get relays(): RelayInfo[] {
    return [...this.#relays.values()];
  }

  reputation(): Promise<Reputation> {
    return this.#reputation;
  }

  /** The live legs. */
  circuits(): CircuitInfo[] {
    const out: CircuitInfo[] = [];
    for (const s of this.#sets) {
      for (const [role, c] of [
        ['primary', s.primary],
        ['standby', s.standby],
      ] as const) {
        if (c?.alive) {
          out.push({
            serial: c.serial,
            role,
            exit: s.exit.onion,
            path: c.path.map((r) => r.onion),
            streams: role === 'primary' ? s.streams.size : 0,
            rttMs: c.health.map((h) => h.rttMs),
          });
        }
      }
    }
    return out;
  }

  /**
   * Opens a stream to `target` (`host:port`; an onion for an mmogit agent) through the mesh: on a live set
   * whose exit allows it, else a new set (a new exit, a primary leg, and a standby built in the background).
   * A refusal by the exit's policy is `ERR_MESH_EXIT_REFUSED`; the mesh then tries another exit, at most twice.
   */
  async connect(
    target: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<MeshStream> {
    if (this.#closed) throw new MeshError('closed', 'mesh closed');
    const t = parseTarget(target);
    const signal = withTimeout(options.signal, options.timeoutMs ?? 60_000, `mesh connect ${target}`);
    let last: unknown;
    for (let attempt = 0; attempt < BUILD_ATTEMPTS; attempt++) {
      const set = this.#setFor(t) ?? (await this.#newSet(t, signal));
      try {
        return await set.openStream(target, { signal });
      } catch (e) {
        last = e;
        if (e instanceof MeshError && e.reason === 'exit-policy') {
          this.#refused.add(`${set.exit.onion} ${t.host}:${t.port}`);
          if (set.streams.size === 0) {
            set.close();
            this.#sets.delete(set);
            this.#retries.cancel(set);
          }
          continue;
        }
        throw e;
      }
    }
    throw last;
  }

  #setFor(t: Target): ClientSet | undefined {
    for (const s of this.#sets) {
      if (s.dead || !s.primary?.alive) continue;
      if (this.#refused.has(`${s.exit.onion} ${t.host}:${t.port}`)) continue;
      if (mayExit(s.exit, t, this.#refused)) return s;
    }
    return undefined;
  }

  async #newSet(t: Target, signal: AbortSignal): Promise<ClientSet> {
    const leg = await this.#legs.build({ target: t, avoid: [] }, signal, 'primary');
    const set = new ClientSet(leg.exit, {
      legFailed: (s, c, error, at) => this.#onLegFailed(s, c, error, at),
      switched: (s, from, to, at) => {
        this.metrics.failovers.inc();
        const detectedAt = this.#detected.get(s) ?? at;
        this.metrics.mttrSeconds.observe((at - detectedAt) / 1000);
        this.emit('circuit:switched', {
          from: from.serial,
          to: to.serial,
          detectedAt: performance.timeOrigin + detectedAt,
          switchedAt: performance.timeOrigin + at,
        });
      },
      recovered: (s, at) =>
        this.emit('stream:recovered', {
          at: performance.timeOrigin + at,
          detectedAt: performance.timeOrigin + (this.#detected.get(s) ?? at),
        }),
      exitLost: (s, error) => {
        this.metrics.exitsLost.inc();
        this.#sets.delete(s);
        this.#retries.cancel(s);
        void this.#reputation.then((r) => r.lost(s.exit.onion));
        this.emit('exit:lost', { exit: s.exit.onion, error, at: nowEpochMs() });
      },
      needLeg: (s, exclude) => void this.#replenish(s, exclude),
    });
    this.#sets.add(set);
    await set.attach(leg, { signal });
    if (this.#options.standby !== false) void this.#replenish(set, set.legRelays());
    return set;
  }

  /**
   * Builds a standby (or a replacement primary) for `set`: same exit, other relays. A failed standby build
   * (the set still has its primary) is tried again with a bounded backoff ({@link StandbyRetries});
   * a failed replacement primary is not: its streams are waiting, and with no leg left the set is given up.
   */
  async #replenish(set: ClientSet, exclude: readonly string[]): Promise<void> {
    if (this.#closed || set.dead || (this.#options.standby === false && set.primary?.alive)) return;
    this.#retries.starting(set);
    this.#building.set(set, (this.#building.get(set) ?? 0) + 1);
    let failed: MeshError | null = null;
    try {
      const leg = await this.#legs.build(
        { exit: set.exit, avoid: exclude },
        withTimeout(this.#stop.signal, 60_000, 'mesh standby'),
        'standby',
      );
      await set.attach(leg);
      this.#retries.succeeded(set);
    } catch (e) {
      failed = e instanceof MeshError ? e : new MeshError('build-failed', String((e as Error)?.message ?? e));
      log('standby for %s failed: %s', set.exit.onion, failed.message);
    } finally {
      const left = (this.#building.get(set) ?? 1) - 1;
      this.#building.set(set, left);
      // no leg left to the exit and none on the way: the streams cannot continue
      if (left === 0 && !set.primary?.alive && !set.standby?.alive && !set.dead)
        set.lose(new MeshError('exit-lost', `no path back to ${set.exit.onion}`));
      else if (failed) this.#retryStandby(set, failed);
    }
  }

  /** Schedules another standby build for `set` if it still has a primary and lacks a standby. */
  #retryStandby(set: ClientSet, error: MeshError): void {
    if (this.#closed || set.dead || !set.primary?.alive || set.standby?.alive) return;
    if ((this.#building.get(set) ?? 0) > 0) return; // a build in flight retries on its own failure
    const delay = this.#retries.schedule(set);
    if (delay === null) return;
    log('standby for %s: next try in %d ms', set.exit.onion, delay);
    this.emit('standby:retry', { exit: set.exit.onion, error, inMs: delay, at: nowEpochMs() });
  }

  /** Starts every standby build that waits for its retry now: a relay became usable again. */
  #kickRetries(): void {
    for (const set of this.#retries.kick())
      log('standby for %s: a relay is usable again, retried now', set.exit.onion);
  }

  #onSuspect(circ: Circuit, hop: number, why: 'missed' | 'latency'): void {
    this.metrics.beaconsLost.inc();
    for (const s of this.#sets) {
      if (s.primary === circ || s.standby === circ) {
        s.failLeg(
          circ,
          new MeshError(
            'timeout',
            `hop ${hop} ${why === 'missed' ? 'stopped answering beacons' : 'slowed down'}`,
            { hop },
          ),
        );
      }
    }
  }

  #onLegFailed(set: ClientSet, leg: Circuit, error: MeshError, at: number): void {
    if (leg === set.primary) this.#detected.set(set, at);
    const hop = error.details?.hop as number | undefined;
    const relay = hop !== undefined && hop >= 1 ? leg.path[hop - 1] : undefined;
    this.metrics.circuitsFailed.inc({ reason: error.reason });
    if (relay && error.reason !== 'closed' && error.reason !== 'tampered') {
      this.#holdOff.lost(relay, this.#relays.get(relay.onion));
      void this.#reputation.then((r) => r.lost(relay.onion));
    }
    this.emit('circuit:failed', {
      serial: leg.serial,
      error,
      ...(hop !== undefined ? { hop } : {}),
      ...(relay ? { relay: relay.onion } : {}),
      at: performance.timeOrigin + at,
    });
  }

  /** Bytes and cells this client's links moved so far (all guards): what the beacon-cost benchmark reads. */
  linkStats(): { bytesIn: number; bytesOut: number; links: number } {
    let bytesIn = 0;
    let bytesOut = 0;
    for (const l of this.#pool.links) {
      bytesIn += l.stats.bytesIn;
      bytesOut += l.stats.bytesOut;
    }
    return { bytesIn, bytesOut, links: this.#pool.links.length };
  }

  /** Serves SOCKS5 on 127.0.0.1 (`port` 0 = any free one); every CONNECT becomes a mesh stream. */
  async socks(options: { port?: number; host?: string } = {}): Promise<SocksServer> {
    const server = await startSocksServer((target, o) => this.connect(target, o), options);
    this.#socks.add(server);
    return server;
  }

  /** Closes every set, SOCKS server and link, and saves reputation. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort(new MeshError('closed', 'mesh closed'));
    this.#retries.cancelAll();
    for (const s of this.#socks) await s.close();
    for (const s of [...this.#sets]) s.close();
    this.#sets.clear();
    this.#pool.closeAll();
    await (await this.#reputation).save();
  }
}
