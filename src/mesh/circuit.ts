/**
 * A client circuit (docs/mesh.md §Circuits): built by telescoping — CREATE on a link to hop 1, then EXTEND
 * through the hops already built — with one key pair per hop; relay messages out are sealed for the hop they
 * address, messages back are opened and attributed to the hop that sent them. Its beacons (beacons.ts) measure
 * each hop and flag a leg that stops answering (docs/mesh.md §Self-healing).
 * @module
 */

import { abortReason, MmogitError, withTimeout } from '../errors.js';
import {
  CELL_HEADER_LEN,
  CMD_CREATE,
  CMD_CREATED,
  CMD_DESTROY,
  DEFAULT_BEACON_INTERVAL_MS,
  HOP_BUILD_TIMEOUT_MS,
  isRelayCommand,
  MSG_BEACON_ACK,
  MSG_EXTEND,
  MSG_EXTENDED,
  MSG_TRUNCATED,
  type Reason,
  reasonByte,
  reasonOf,
} from './_wire.js';
import { Beacons } from './beacons.js';
import {
  type Cell,
  cellFrame,
  classFor,
  dataLength,
  encodeCell,
  encodeExtend,
  encodeMessage,
  type MessageData,
  parseMessage,
  type RelayMessage,
} from './cells.js';
import type { BuildOptions, CircuitEvents, HopHealth } from './circuit-types.js';
import { MeshError } from './errors.js';
import type { ExitPolicy } from './exit-policy.js';
import { startCreate } from './handshake.js';
import { clientOpenBack, clientSealOut, type HopLayers } from './layers.js';
import type { Link, RelayAddress } from './link.js';
import { type Leg, legWindows } from './streams.js';

/** A relay as the client knows it: its key (always), how to reach it, what it allows. */
export interface RelayInfo extends RelayAddress {
  exitPolicy?: ExitPolicy | undefined;
  /** Onions the relay declares as run by the same operator. */
  family?: readonly string[] | undefined;
}

export type { BuildOptions, CircuitEvents, HopHealth } from './circuit-types.js';

let nextCircuitSerial = 1;

/** One built circuit; also the leg of a client set. */
export class Circuit implements Leg {
  readonly serial = nextCircuitSerial++;
  readonly path: readonly RelayInfo[];
  readonly link: Link;
  readonly circId: number;
  readonly hops: HopLayers[] = [];
  readonly health: HopHealth[];
  /** CPU and wall time of the build (ms). */
  buildMs = 0;
  buildCpuMs = 0;
  sendWindow = legWindows().sendWindow;
  receivedSinceSendme = 0;
  events: CircuitEvents;
  #closed: MeshError | null = null;
  #waiter: {
    cmd: number;
    resolve: (m: { from: number; msg?: RelayMessage; body?: Uint8Array }) => void;
    reject: (e: Error) => void;
  } | null = null;
  /**
   * A standby leg carries nothing, so beacons to it only every `HOP_PROBE_EVERY`th interval: its death is
   * also reported by its neighbours (TRUNCATED), and the budget goes to the leg that carries the streams.
   */
  standby = false;
  readonly #beacons: Beacons = new Beacons(this);

  private constructor(path: readonly RelayInfo[], link: Link, circId: number, events: CircuitEvents) {
    this.path = path;
    this.link = link;
    this.circId = circId;
    this.events = events;
    this.health = path.map(() => ({ rttMs: null, samples: 0, lost: 0, sent: 0, lostSinceAnswer: false }));
  }

  get alive(): boolean {
    return this.#closed === null;
  }

  get closeError(): MeshError | null {
    return this.#closed;
  }

  get length(): number {
    return this.path.length;
  }

  get exit(): RelayInfo {
    return this.path[this.path.length - 1] as RelayInfo;
  }

  /**
   * Builds a circuit along `path` (1–5 relays): CREATE with hop 1, EXTEND through the others. On failure the
   * partial circuit is destroyed and the error names the hop (`details.hop`).
   */
  static async build(path: readonly RelayInfo[], options: BuildOptions): Promise<Circuit> {
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const first = path[0] as RelayInfo;
    const hopTimeout = (r: RelayInfo) => (options.hopTimeoutMs ?? HOP_BUILD_TIMEOUT_MS) * (r.tcp ? 1 : 6);
    const linkSignal = withTimeout(options.signal, hopTimeout(first), `mesh link to ${first.onion}`);
    let link: Link;
    try {
      link = await options.pool.get(first, linkSignal);
    } catch (e) {
      throw wrapBuild(e, 1);
    }
    const circ = new Circuit(path, link, link.allocCircId(), options.events ?? {});
    link.register(circ.circId, {
      onCell: (c) => circ.#onCell(c),
      onLinkClosed: (e) => circ.#end(e.reason as Reason, 1, e),
    });
    try {
      for (let k = 1; k <= path.length; k++) {
        const relay = path[k - 1] as RelayInfo;
        const pending = startCreate(relay.publicKey);
        const signal = withTimeout(options.signal, hopTimeout(relay), `mesh build hop ${k}`);
        let reply: Uint8Array;
        if (k === 1) {
          const wait = circ.#wait(CMD_CREATED, signal);
          link.send(encodeCell(circ.circId, CMD_CREATE, pending.body), circ.circId);
          reply = (await wait).body as Uint8Array;
        } else {
          const wait = circ.#wait(MSG_EXTENDED, signal);
          const addr = relay.tcp
            ? `${relay.tcp.host.includes(':') ? `[${relay.tcp.host}]` : relay.tcp.host}:${relay.tcp.port}`
            : '';
          circ.sendTo(
            k - 1,
            MSG_EXTEND,
            0,
            encodeExtend({ publicKey: relay.publicKey, addr, create: pending.body }),
          );
          const got = await wait;
          if (got.from !== k - 1)
            throw new MeshError('protocol', `EXTENDED from hop ${got.from}, expected ${k - 1}`);
          reply = (got.msg as RelayMessage).data;
        }
        try {
          circ.hops.push(pending.finish(reply));
        } catch (e) {
          throw new MeshError('bad-handshake', `hop ${k} (${relay.onion}): ${(e as Error).message}`, {
            cause: e,
            hop: k,
          });
        }
      }
    } catch (e) {
      const err = wrapBuild(e, circ.hops.length + 1);
      circ.destroy(err.reason === 'timeout' ? 'timeout' : 'closed', err);
      throw err;
    }
    circ.buildMs = performance.now() - started;
    const cpu = process.cpuUsage(cpu0);
    circ.buildCpuMs = (cpu.user + cpu.system) / 1000;
    return circ;
  }

  #wait(cmd: number, signal: AbortSignal): Promise<{ from: number; msg?: RelayMessage; body?: Uint8Array }> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(this.#closed);
        return;
      }
      const onAbort = () => {
        this.#waiter = null;
        reject(abortReason(signal, 'mesh circuit build'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = {
        cmd,
        resolve: (m) => {
          signal.removeEventListener('abort', onAbort);
          this.#waiter = null;
          resolve(m);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          this.#waiter = null;
          reject(e);
        },
      };
    });
  }

  /** Sends a relay message to hop `j` (1-based). */
  sendTo(j: number, cmd: number, stream: number, data: MessageData, prefix?: Uint8Array): void {
    if (this.#closed) throw this.#closed;
    const [relayCmd, len] = classFor(dataLength(data) + (prefix?.length ?? 0));
    const cell = cellFrame(this.circId, relayCmd);
    clientSealOut(this.hops, j, encodeMessage(len, cmd, stream, data, prefix), { cell, at: CELL_HEADER_LEN });
    this.link.send(cell, this.circId);
  }

  /** As a leg: a message to the exit. */
  send(cmd: number, stream: number, data: MessageData, prefix?: Uint8Array): void {
    this.sendTo(this.hops.length, cmd, stream, data, prefix);
  }

  #onCell(cell: Cell): void {
    if (this.#closed) return;
    if (cell.cmd === CMD_CREATED) {
      if (this.#waiter?.cmd === CMD_CREATED) this.#waiter.resolve({ from: 1, body: Buffer.from(cell.body) });
      else this.#end('protocol', 1, new MeshError('protocol', 'unexpected CREATED', { hop: 1 }));
      return;
    }
    if (cell.cmd === CMD_DESTROY) {
      const reason = reasonOf(cell.body[0] as number);
      this.#end(
        reason,
        1,
        new MeshError(reason, `circuit destroyed by hop 1 (${reason})`, { hop: 1 }),
        false,
      );
      return;
    }
    if (!isRelayCommand(cell.cmd) || this.hops.length === 0) {
      this.#end('protocol', 1, new MeshError('protocol', `unexpected cell ${cell.cmd}`, { hop: 1 }));
      return;
    }
    const opened = clientOpenBack(this.hops, cell.body);
    if (opened.from === null) {
      const at = opened.failedAt;
      this.events.onTampering?.([at - 1, at]);
      this.#end(
        'tampered',
        at,
        new MeshError('tampered', `a cell failed authentication at layer ${at}`, { hop: at }),
      );
      return;
    }
    let msg: RelayMessage;
    try {
      msg = parseMessage(opened.plain, opened.length);
    } catch (e) {
      this.#end('protocol', opened.from, e as MeshError);
      return;
    }
    const from = opened.from;
    if (from === this.hops.length) this.#beacons.heardFromExit();
    if (msg.cmd === MSG_TRUNCATED) {
      const reason = reasonOf(msg.data[0] ?? 1);
      if (reason === 'tampered') this.events.onTampering?.([from - 1, from]);
      const lost =
        reason === 'link-lost' ||
        reason === 'link-timeout' ||
        reason === 'timeout' ||
        reason === 'hop-unreachable'
          ? from + 1
          : from;
      this.#end(
        reason,
        lost,
        new MeshError(reason, `hop ${from} truncated the circuit (${reason})`, {
          hop: lost,
          details: { reportedBy: from },
        }),
      );
      return;
    }
    if (msg.cmd === MSG_BEACON_ACK) {
      this.#beacons.onAck(from, msg.data);
      return;
    }
    if (this.#waiter && msg.cmd === this.#waiter.cmd) {
      this.#waiter.resolve({ from, msg });
      return;
    }
    try {
      this.events.onMessage?.(from, msg);
    } catch (e) {
      this.#end(
        'protocol',
        from,
        e instanceof MeshError ? e : new MeshError('protocol', (e as Error).message, { hop: from }),
      );
    }
  }

  // ── beacons (beacons.ts) ──────────────────────────────────────────────────────────────────────────

  /** Starts beacons: every interval one to the exit, every `HOP_PROBE_EVERY`th one to each hop. */
  startBeacons(intervalMs = DEFAULT_BEACON_INTERVAL_MS): void {
    this.#beacons.start(intervalMs);
  }

  /** Sends a beacon to hop `j` now (also used to localise a suspect leg). */
  probe(j: number): void {
    this.#beacons.probe(j);
  }

  // ── ending ────────────────────────────────────────────────────────────────────────────────────────

  /** Ends the circuit: DESTROY to hop 1, layers wiped, `onClosed` fired. */
  destroy(reason: Reason = 'closed', error?: MeshError): void {
    this.#end(reason, 0, error ?? new MeshError(reason, `circuit closed (${reason})`));
  }

  #end(reason: Reason, hop: number, error: MeshError, sendDestroy = true): void {
    if (this.#closed) return;
    this.#closed =
      error.details?.hop === undefined && hop > 0
        ? new MeshError(error.reason, error.message.replace(/^mesh: /, ''), { hop, cause: error.cause })
        : error;
    this.#beacons.stop();
    this.link.unregister(this.circId);
    if (sendDestroy && !this.link.closed) {
      try {
        this.link.send(encodeCell(this.circId, CMD_DESTROY, Uint8Array.of(reasonByte(reason))));
      } catch {
        // the link is going too
      }
    }
    for (const h of this.hops) {
      h.forward.destroy();
      h.backward.destroy();
    }
    this.#waiter?.reject(this.#closed);
    this.events.onClosed?.(this.#closed);
  }
}

function wrapBuild(e: unknown, hop: number): MeshError {
  if (e instanceof MeshError)
    return e.details?.hop !== undefined
      ? e
      : new MeshError(e.reason, e.message.replace(/^mesh: /, ''), { cause: e, hop });
  if (e instanceof MmogitError && e.code === 'ERR_TIMEOUT')
    return new MeshError('timeout', `build timed out at hop ${hop}`, { cause: e, hop });
  if (e instanceof MmogitError && e.code === 'ERR_HANDSHAKE')
    return new MeshError('bad-handshake', `hop ${hop}: ${e.message}`, { cause: e, hop });
  if (e instanceof MmogitError && e.code === 'ERR_ABORTED') throw e;
  return new MeshError('hop-unreachable', `hop ${hop}: ${(e as Error)?.message ?? e}`, { cause: e, hop });
}
