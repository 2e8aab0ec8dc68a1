/**
 * The client's stream set to one exit (tor's conflux, proposal 329, reshaped): a primary leg carries the
 * streams, a warm standby leg to the same exit on a disjoint guard and middle waits; when the primary is lost
 * (or suspect) the client sends SWITCH on the standby with what it received of every stream, the exit answers
 * SWITCHED with its own, and both resend from the other's offset: no byte lost or repeated. When the exit itself
 * is lost, open streams fail with `exit-lost`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createLogger } from '../_log.js';
import { abortReason, withTimeout } from '../errors.js';
import {
  BEGIN_TIMEOUT_MS,
  HOP_BUILD_TIMEOUT_MS,
  MAX_STREAMS_PER_SET,
  MSG_BEGIN,
  MSG_CONNECTED,
  MSG_END,
  MSG_LINK,
  MSG_LINKED,
  MSG_SWITCH,
  MSG_SWITCHED,
  ONION_BEGIN_TIMEOUT_MS,
  reasonOf,
  SET_NONCE_LEN,
} from './_wire.js';
import { encodeSwitch, parseEnd, parseSwitch, type RelayMessage } from './cells.js';
import type { Circuit, RelayInfo } from './circuit.js';
import { MeshError } from './errors.js';
import { parseTarget } from './exit-policy.js';
import { StreamSet } from './stream-set.js';
import { MeshStream } from './streams.js';

const log = createLogger('mmogit:mesh:set');
/** How long the exit gets to answer a SWITCH before the client gives the exit up. */
export const SWITCH_TIMEOUT_MS = 3_000;

/** What a set reports to its mesh. */
export interface ClientSetEvents {
  /** A leg was lost or found suspect (`at` = performance.now() of the detection). */
  legFailed?: (set: ClientSet, leg: Circuit, error: MeshError, at: number) => void;
  /** Streams moved to `to`; `at` = when SWITCHED arrived. */
  switched?: (set: ClientSet, from: Circuit, to: Circuit, at: number) => void;
  /** The first stream byte after a switch arrived. */
  recovered?: (set: ClientSet, at: number) => void;
  /** The exit is gone: every stream failed; the set is dead. */
  exitLost?: (set: ClientSet, error: MeshError) => void;
  /** The set wants a (new) standby leg, or a replacement primary when it has none. */
  needLeg?: (set: ClientSet, exclude: readonly string[]) => void;
}

interface PendingOpen {
  resolve: (s: MeshStream) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One set: streams to `exit`, over a primary leg and a standby. */
export class ClientSet extends StreamSet {
  readonly exit: RelayInfo;
  readonly nonce = randomBytes(SET_NONCE_LEN);
  primary: Circuit | null = null;
  standby: Circuit | null = null;
  dead: MeshError | null = null;
  readonly #events: ClientSetEvents;
  readonly #opening = new Map<number, PendingOpen>();
  /** BEGIN data of streams not yet connected, to ask again after a switch. */
  readonly #begins = new Map<number, Buffer>();
  #nextStream = 1;
  #switching: { to: Circuit; from: Circuit; timer: NodeJS.Timeout } | null = null;

  constructor(exit: RelayInfo, events: ClientSetEvents = {}) {
    super();
    this.exit = exit;
    this.#events = events;
  }

  /** Relays the set's legs use (a new standby avoids them, except the exit). */
  legRelays(): string[] {
    const out: string[] = [];
    for (const c of [this.primary, this.standby])
      if (c?.alive) for (const r of c.path.slice(0, -1)) out.push(r.onion);
    return out;
  }

  /** Adds a built circuit ending at this set's exit: LINK, then it becomes primary (if none) or standby. */
  async attach(leg: Circuit, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.dead) throw this.dead;
    if (leg.exit.onion !== this.exit.onion) throw new MeshError('protocol', 'leg ends at another exit');
    const signal = withTimeout(options.signal, HOP_BUILD_TIMEOUT_MS, 'mesh LINK');
    const linked = new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(abortReason(signal, 'mesh LINK'));
      signal.addEventListener('abort', onAbort, { once: true });
      leg.events = {
        ...leg.events,
        onMessage: (from, msg) => {
          if (msg.cmd === MSG_LINKED) {
            signal.removeEventListener('abort', onAbort);
            resolve();
            return;
          }
          this.#onMessage(leg, from, msg);
        },
        onClosed: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
          this.#onLegClosed(leg, e);
        },
      };
    });
    leg.send(MSG_LINK, 0, this.nonce);
    await linked;
    if (this.dead) {
      leg.destroy();
      throw this.dead;
    }
    if (!this.primary?.alive && !this.#switching) {
      if (this.primary === null && this.streams.size === 0) {
        leg.standby = false;
        this.primary = leg;
        this.setActive(leg);
      } else {
        // the primary was lost while this leg was being built: move the streams onto it
        this.#switchTo(leg, this.primary ?? leg);
      }
    } else if (!this.standby?.alive) {
      leg.standby = true;
      this.standby = leg;
    } else {
      leg.destroy();
    }
  }

  /** Opens a stream to `target` (`host:port`) through this set's exit. */
  openStream(
    target: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<MeshStream> {
    if (this.dead) return Promise.reject(this.dead);
    const t = parseTarget(target);
    if (this.streams.size >= MAX_STREAMS_PER_SET) {
      return Promise.reject(new MeshError('resource-limit', 'too many streams on this set'));
    }
    let id = this.#nextStream;
    while (this.streams.has(id) || id === 0) id = (id % 65535) + 1;
    this.#nextStream = (id % 65535) + 1;
    const stream = new MeshStream(this, id, false);
    this.add(stream);
    const timeoutMs = options.timeoutMs ?? (t.onion ? ONION_BEGIN_TIMEOUT_MS : BEGIN_TIMEOUT_MS);
    return new Promise<MeshStream>((resolve, reject) => {
      const fail = (e: Error) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#opening.delete(id);
        this.#begins.delete(id);
        stream.destroyQuietly(e);
        reject(e);
      };
      const onAbort = () => fail(abortReason(options.signal as AbortSignal, `mesh connect ${target}`));
      const timer = setTimeout(
        () => fail(new MeshError('timeout', `no answer to BEGIN ${target} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      timer.unref();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#opening.set(id, {
        resolve: (s) => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: fail,
        timer,
      });
      stream.on('error', () => {}); // surfaced through the promise while opening; the caller listens after
      const begin = Buffer.from(`${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`, 'utf8');
      this.#begins.set(id, begin);
      this.send(MSG_BEGIN, id, begin);
    });
  }

  #onMessage(leg: Circuit, from: number, msg: RelayMessage): void {
    if (from !== leg.length)
      throw new MeshError('protocol', `message ${msg.cmd} from hop ${from}, not the exit`);
    switch (msg.cmd) {
      case MSG_CONNECTED: {
        const s = this.streams.get(msg.stream);
        if (!s) return;
        s.ready = true;
        this.#begins.delete(msg.stream);
        const o = this.#opening.get(msg.stream);
        if (o) {
          this.#opening.delete(msg.stream);
          o.resolve(s);
        }
        this.schedulePump();
        return;
      }
      case MSG_SWITCHED:
        this.#onSwitched(leg, msg.data);
        return;
      case MSG_END: {
        const o = this.#opening.get(msg.stream);
        if (o) {
          const { reason } = parseEnd(msg.data);
          const r = reasonOf(reason);
          o.reject(
            new MeshError(
              r === 'done' ? 'unreachable' : r,
              r === 'exit-policy'
                ? `the exit ${this.exit.onion} refuses this target`
                : `the exit could not open the target (${r})`,
            ),
          );
          return;
        }
        this.handleCommon(leg, msg);
        return;
      }
      default:
        if (!this.handleCommon(leg, msg))
          throw new MeshError('protocol', `unexpected message ${msg.cmd} from the exit`);
    }
  }

  /** Marks a leg failed (suspect) and acts as if it was lost. */
  failLeg(leg: Circuit, error: MeshError): void {
    leg.destroy(error.reason === 'timeout' ? 'timeout' : 'closed', error);
  }

  #onLegClosed(leg: Circuit, error: MeshError): void {
    const at = performance.now();
    if (this.dead) return;
    this.#events.legFailed?.(this, leg, error, at);
    if (leg === this.standby) {
      // A standby that lost its way to the exit says nothing about the exit while the primary still reaches it
      // (one link to the exit failed, not the exit): the primary's own beacons and links judge that. Losing
      // the set here ended the primary's streams on a single link's false alarm.
      this.standby = null;
      if (this.#exitGone(leg, error) && !this.primary?.alive) this.#lose(error);
      else this.#events.needLeg?.(this, this.legRelays());
      return;
    }
    if (this.#switching?.to === leg) {
      clearTimeout(this.#switching.timer);
      this.#switching = null;
      this.#lose(
        new MeshError('exit-lost', `the exit did not take over the streams: ${error.message}`, {
          cause: error,
        }),
      );
      return;
    }
    if (leg !== this.primary) return;
    this.setActive(null);
    const standby = this.standby;
    // The exit looks gone (the hop before it lost its link to it), but a live standby reaches the same exit by
    // another link: SWITCH on it is the test. A gone exit fails that leg too (its link closes, or no SWITCHED
    // within SWITCH_TIMEOUT_MS), and the set is lost then; a live exit takes the streams over.
    if (this.#exitGone(leg, error) && !standby?.alive) {
      this.#lose(error);
      return;
    }
    this.standby = null;
    if (standby?.alive) this.#switchTo(standby, leg);
    else this.#events.needLeg?.(this, this.legRelays());
  }

  /** Whether a leg's failure means its exit is gone (not just a guard or middle). */
  #exitGone(leg: Circuit, error: MeshError): boolean {
    const hop = error.details?.hop;
    // `link-timeout`: the hop before the exit only heard nothing from it, which a live exit behind a stalled
    // or congested link also causes; a new leg to the same exit is the test (a gone exit fails its build)
    return hop === leg.length && error.reason !== 'tampered' && error.reason !== 'link-timeout';
  }

  #switchTo(to: Circuit, from: Circuit): void {
    to.standby = false;
    log('switching %d streams from leg %d to leg %d', this.streams.size, from.serial, to.serial);
    this.primary = to;
    this.setActive(to);
    this.paused = true;
    const timer = setTimeout(() => {
      this.#switching = null;
      this.#lose(
        new MeshError('exit-lost', `no SWITCHED from ${this.exit.onion} in ${SWITCH_TIMEOUT_MS} ms`, {
          hop: to.length,
        }),
      );
    }, SWITCH_TIMEOUT_MS);
    timer.unref();
    this.#switching = { to, from, timer };
    try {
      to.send(MSG_SWITCH, 0, encodeSwitch(this.switchEntries()));
    } catch (e) {
      log('SWITCH failed: %s', (e as Error).message);
    }
  }

  #onSwitched(leg: Circuit, data: Uint8Array): void {
    const sw = this.#switching;
    if (!sw || sw.to !== leg) throw new MeshError('protocol', 'SWITCHED without a SWITCH');
    clearTimeout(sw.timer);
    this.#switching = null;
    const at = performance.now();
    const entries = parseSwitch(data);
    const known = new Set(entries.map((e) => e.stream));
    this.paused = false;
    this.applyPeerEntries(entries);
    let first = true;
    for (const s of this.streams.values()) {
      if (!known.has(s.id) && !s.ready) {
        // its BEGIN was lost with the old leg: ask again
        const begin = this.#begins.get(s.id);
        if (begin) this.send(MSG_BEGIN, s.id, begin);
      } else if (!known.has(s.id)) {
        s.destroyQuietly(
          new MeshError('exit-lost', `stream ${s.id} is unknown to the exit after the switch`),
        );
        continue;
      }
      s.onFirstData = () => {
        if (first) {
          first = false;
          this.#events.recovered?.(this, performance.now());
        }
      };
    }
    this.#events.switched?.(this, sw.from, leg, at);
    this.schedulePump();
    this.#events.needLeg?.(this, this.legRelays());
  }

  #lose(error: MeshError, announce = true): void {
    if (this.dead) return;
    log('set to %s lost: %s', this.exit.onion, error.message);
    const err =
      error.reason === 'exit-lost' || error.reason === 'closed'
        ? error
        : new MeshError('exit-lost', `the exit ${this.exit.onion} is gone (${error.reason})`, {
            cause: error,
            hop: error.details?.hop as number | undefined,
          });
    this.dead = err;
    for (const o of [...this.#opening.values()]) o.reject(err);
    this.#opening.clear();
    this.failAll(err);
    for (const c of [this.primary, this.standby]) c?.destroy('closed');
    this.primary = null;
    this.standby = null;
    if (announce) this.#events.exitLost?.(this, err);
  }

  /** Gives the exit up: every stream fails with `error` (announced as `exitLost`). */
  lose(error: MeshError): void {
    this.#lose(error);
  }

  /** Closes every stream and leg (the mesh's own decision: no `exitLost`). */
  close(): void {
    this.#lose(new MeshError('closed', 'set closed'), false);
  }
}
