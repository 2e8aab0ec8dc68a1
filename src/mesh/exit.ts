/**
 * The exit side of stream sets (docs/protocol.md §8.5): LINK joins a circuit to a set, BEGIN opens a target the
 * policy allows (TCP, or an onion through tor), SWITCH moves the set to the leg it arrived on and both sides
 * resend from the other's offsets. A set whose legs all died is kept {@link SET_GRACE_MS} for a SWITCH.
 * @module
 */
import type { Socket } from 'node:net';
import { connect } from '../_async.js';
import { createLogger } from '../_log.js';
import { hasCode } from '../errors.js';
import {
  BEGIN_TIMEOUT_MS,
  MSG_BEGIN,
  MSG_CONNECTED,
  MSG_END,
  MSG_LINK,
  MSG_LINKED,
  MSG_SWITCH,
  MSG_SWITCHED,
  ONION_BEGIN_TIMEOUT_MS,
  type Reason,
  reasonByte,
  SET_GRACE_MS,
  SET_NONCE_LEN,
} from './_wire.js';
import { encodeEnd, encodeSwitch, parseSwitch, type RelayMessage } from './cells.js';
import { MeshError } from './errors.js';
import { allows, type ExitPolicy, parseTarget, type Target } from './exit-policy.js';
import { StreamSet } from './stream-set.js';
import { type Leg, MeshStream } from './streams.js';

const log = createLogger('mmogit:mesh:exit');

/** Connects to an onion target through tor (absent: this exit cannot reach onions). */
export type OnionConnector = (
  host: string,
  port: number,
  options: { signal: AbortSignal },
) => Promise<Socket>;

/** A relay circuit seen as a leg of an exit set. */
export interface ExitLeg extends Leg {
  /** The set this circuit joined with LINK. */
  set: ExitSet | null;
}

export interface ExitOptions {
  policy: ExitPolicy;
  onionConnect?: OnionConnector | undefined;
  /** Observes every target an exit opens (tests: what an exit learns). */
  onBegin?: (target: Target, allowed: boolean) => void;
}

/** One exit set: the streams of one client's set, across its legs to this exit. */
export class ExitSet extends StreamSet {
  readonly legs = new Set<ExitLeg>();
  readonly #sets: ExitSets;
  readonly nonce: string;
  #grace: NodeJS.Timeout | undefined;

  constructor(sets: ExitSets, nonce: string) {
    super();
    this.#sets = sets;
    this.nonce = nonce;
  }

  join(leg: ExitLeg): boolean {
    const isNew = this.legs.size === 0 && this.streams.size === 0;
    this.legs.add(leg);
    leg.set = this;
    // only the first leg starts active; later ones carry the set only after the client's SWITCH
    if (isNew) this.setActive(leg);
    if (this.#grace) clearTimeout(this.#grace);
    this.#grace = undefined;
    return isNew;
  }

  /** A leg died: keep the streams for a SWITCH on another leg, for a while. */
  leave(leg: ExitLeg): void {
    this.legs.delete(leg);
    leg.set = null;
    // the client decides where the streams go next (SWITCH); sending on another leg now would skip bytes
    if (this.active === leg) this.setActive(null);
    if (this.legs.size === 0) {
      this.#grace = setTimeout(
        () => this.close(new MeshError('exit-lost', 'no leg came back in time')),
        SET_GRACE_MS,
      );
      this.#grace.unref();
    }
  }

  close(error: MeshError): void {
    if (this.#grace) clearTimeout(this.#grace);
    this.failAll(error);
    this.#sets.delete(this.nonce);
  }

  protected override onStreamRemoved(): void {
    if (this.streams.size === 0 && this.legs.size === 0) this.close(new MeshError('closed', 'set empty'));
  }

  /** SWITCH on `leg`: answer SWITCHED (our offsets), then CONNECTED again, then resend from the client's. */
  switchTo(leg: ExitLeg, data: Uint8Array): void {
    const entries = parseSwitch(data);
    this.setActive(leg);
    this.paused = false;
    leg.send(MSG_SWITCHED, 0, encodeSwitch(this.switchEntries()));
    for (const s of this.streams.values()) leg.send(MSG_CONNECTED, s.id, new Uint8Array(0));
    this.applyPeerEntries(entries);
    this.schedulePump();
  }
}

/** All sets of one exit, by nonce. */
export class ExitSets {
  readonly #sets = new Map<string, ExitSet>();
  readonly #options: ExitOptions;

  constructor(options: ExitOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#sets.size;
  }

  delete(nonce: string): void {
    this.#sets.delete(nonce);
  }

  /** Stops every stream (the relay is closing). */
  closeAll(): void {
    for (const s of [...this.#sets.values()]) s.close(new MeshError('closed', 'exit closing'));
  }

  /**
   * Handles a message addressed to this hop as an exit; false if it is not an exit message. Throws a
   * `protocol` MeshError for a malformed one (the relay tears the circuit down).
   */
  handle(leg: ExitLeg, msg: RelayMessage): boolean {
    if (msg.cmd === MSG_LINK) {
      if (msg.data.length !== SET_NONCE_LEN) throw new MeshError('protocol', 'LINK nonce has a bad length');
      if (leg.set) throw new MeshError('protocol', 'circuit already linked');
      const nonce = msg.data.toString('hex');
      let set = this.#sets.get(nonce);
      if (!set) {
        set = new ExitSet(this, nonce);
        this.#sets.set(nonce, set);
      }
      const isNew = set.join(leg);
      leg.send(MSG_LINKED, 0, Uint8Array.of(isNew ? 0 : 1));
      return true;
    }
    const set = leg.set;
    if (
      msg.cmd === MSG_BEGIN ||
      msg.cmd === MSG_SWITCH ||
      msg.cmd === MSG_END ||
      msg.cmd === 3 ||
      msg.cmd === 5
    ) {
      if (!set) throw new MeshError('protocol', 'stream message on a circuit that is not linked to a set');
    }
    if (!set) return false;
    if (msg.cmd === MSG_SWITCH) {
      set.switchTo(leg, msg.data);
      return true;
    }
    if (msg.cmd === MSG_BEGIN) {
      this.#begin(set, leg, msg);
      return true;
    }
    return set.handleCommon(leg, msg);
  }

  #begin(set: ExitSet, leg: ExitLeg, msg: RelayMessage): void {
    const refuse = (reason: Reason) => leg.send(MSG_END, msg.stream, encodeEnd(reasonByte(reason), 0));
    if (msg.stream === 0 || set.streams.has(msg.stream))
      throw new MeshError('protocol', `BEGIN reuses stream ${msg.stream}`);
    let target: Target;
    try {
      target = parseTarget(msg.data.toString('utf8'));
    } catch {
      refuse('protocol');
      return;
    }
    const allowed = allows(this.#options.policy, target) && (!target.onion || !!this.#options.onionConnect);
    this.#options.onBegin?.(target, allowed);
    if (!allowed) {
      refuse('exit-policy');
      return;
    }
    const stream = new MeshStream(set, msg.stream, true);
    try {
      set.add(stream);
    } catch {
      refuse('resource-limit');
      return;
    }
    const timeoutMs = target.onion ? ONION_BEGIN_TIMEOUT_MS : BEGIN_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeoutMs);
    const opening = target.onion
      ? (this.#options.onionConnect as OnionConnector)(target.host, target.port, { signal })
      : connect(
          { host: target.host, port: target.port },
          { signal, what: `exit to ${target.host}:${target.port}` },
        );
    opening.then(
      (socket) => {
        if (stream.destroyed) {
          socket.destroy();
          return;
        }
        socket.setNoDelay(true);
        // A stream is half-closable end to end (docs/protocol.md §8.5: each direction has its own END), so the
        // target's FIN must not close our write side: net sockets default to allowHalfOpen false, which ends
        // the write side on FIN and drops every upload byte that arrives after the target answered and ended
        // (over relay onions, the usual order). The property is read when FIN arrives (Node's net.Socket).
        socket.allowHalfOpen = true;
        socket.on('error', (e) => stream.destroy(new MeshError('reset', `target: ${e.message}`)));
        stream.on('error', () => socket.destroy());
        stream.on('close', () => {
          if (!socket.writableEnded) socket.destroy();
        });
        socket.pipe(stream);
        stream.pipe(socket);
        set.send(MSG_CONNECTED, msg.stream, new Uint8Array(0));
      },
      (e) => {
        log('BEGIN %s:%d failed: %s', target.host, target.port, (e as Error).message);
        set.send(
          MSG_END,
          msg.stream,
          encodeEnd(reasonByte(hasCode(e, 'ERR_TIMEOUT') || signal.aborted ? 'timeout' : 'unreachable'), 0),
        );
        stream.destroyQuietly(new MeshError('unreachable', 'target unreachable'));
      },
    );
  }
}
