/**
 * A mesh relay (docs/mesh.md): accepts links (TCP or an onion stream), answers CREATE, extends circuits to the
 * relay a client names (authenticating it by its key), moves cells between neighbours one layer at a time, and
 * acts as an exit for the messages addressed to it. It knows only its neighbours on each circuit.
 * @module
 */
import { createServer, type Server } from 'node:net';
import { createLogger } from '../_log.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey } from '../identity/onion.js';
import { type ByteChannel, channelFromDuplex } from '../transport/byte-channel.js';
import {
  CELL_HEADER_LEN,
  CIRCUIT_WINDOW_CELLS,
  CMD_CREATE,
  CMD_CREATED,
  CMD_DESTROY,
  DEFAULT_BEACON_INTERVAL_MS,
  HOP_BUILD_TIMEOUT_MS,
  isRelayCommand,
  MAX_CIRCUITS_PER_RELAY,
  MSG_BEACON,
  MSG_BEACON_ACK,
  MSG_EXTEND,
  MSG_EXTENDED,
  MSG_TRUNCATED,
  type Reason,
  reasonByte,
  reasonOf,
  TAG_LEN,
} from './_wire.js';
import { type Cell, cellHead, encodeCell, parseExtend, parseMessage, type RelayMessage } from './cells.js';
import { MeshError } from './errors.js';
import { ExitSets, type OnionConnector } from './exit.js';
import { DEFAULT_EXIT_POLICY, type ExitPolicy, splitHostPort, type Target } from './exit-policy.js';
import { answerCreate, sameKey } from './handshake.js';
import { forwardParts, isRecognized, relayOpenForward } from './layers.js';
import {
  acceptLink,
  type CellBytes,
  dialLink,
  type Link,
  type OnionChannelDialer,
  tuneSocket,
} from './link.js';
import { RelayCircuit, type Side } from './relay-circuit.js';

const log = createLogger('mmogit:mesh:relay');
/**
 * A circuit whose queue towards one neighbour exceeds this is torn down (twice the circuit window): the window
 * counts a 64 KiB-class cell as 4 (dataCellWeight), and 4 × (5 + 16384) ≥ 5 + 65520, so this stays ≥ twice a
 * full window's bytes.
 */
const MAX_CIRCUIT_QUEUE = 2 * CIRCUIT_WINDOW_CELLS * (5 + 16384) + 64 * 1024;

/** Instrumentation for tests and benchmarks: never needed to run a relay. */
export interface RelayHooks {
  /** Every link payload this relay received, after the link's PQ layer: what a relay that logs sees. */
  onPayload?: (payload: Uint8Array) => void;
  /** Rewrites a relay body this relay is about to send (`forward`: towards the exit). */
  mutate?: (direction: 'forward' | 'backward', body: Buffer) => Buffer;
}

export interface RelayOptions {
  key: AgentKey;
  exitPolicy?: ExitPolicy;
  /** Link keepalive interval (default {@link DEFAULT_BEACON_INTERVAL_MS}). */
  intervalMs?: number;
  /** Reaches other relays by onion (a libp2p stream over tor). */
  onionDialer?: OnionChannelDialer;
  /** Reaches onion targets of BEGIN through tor. */
  onionConnect?: OnionConnector;
  maxCircuits?: number;
  hooks?: RelayHooks;
  /** Observes BEGINs (what an exit learns); tests use it. */
  onBegin?: (target: Target, allowed: boolean) => void;
  onEvent?: (e: RelayEvent) => void;
}

/** What a relay reports for metrics and logs. */
export type RelayEvent =
  | { type: 'circuit-created' }
  | { type: 'circuit-closed'; reason: Reason }
  | { type: 'tampering'; direction: 'forward' }
  | { type: 'link'; direction: 'inbound' | 'outbound'; peer: string };

/** The relay. Give it links with {@link acceptChannel} or {@link listen}. */
export class Relay {
  readonly key: AgentKey;
  readonly policy: ExitPolicy;
  readonly #options: RelayOptions;
  readonly #exits: ExitSets;
  /** Links by the neighbour's onion (relays' links are reused for extends). */
  readonly #links = new Map<string, Link>();
  readonly #allLinks = new Set<Link>();
  readonly #dialing = new Map<string, Promise<Link>>();
  readonly #servers = new Set<Server>();
  #circuits = 0;
  #closed = false;

  constructor(options: RelayOptions) {
    this.key = options.key;
    this.policy = options.exitPolicy ?? DEFAULT_EXIT_POLICY;
    this.#options = options;
    this.#exits = new ExitSets({
      policy: this.policy,
      onionConnect: options.onionConnect,
      ...(options.onBegin ? { onBegin: options.onBegin } : {}),
    });
  }

  get circuitCount(): number {
    return this.#circuits;
  }

  get linkCount(): number {
    return this.#allLinks.size;
  }

  #linkOptions() {
    return {
      intervalMs: this.#options.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS,
      onUnknownCell: (link: Link, cell: Cell) => this.#onNewCell(link, cell),
      ...(this.#options.hooks?.onPayload ? { onPayload: this.#options.hooks.onPayload } : {}),
    };
  }

  #adopt(link: Link, direction: 'inbound' | 'outbound'): void {
    if (this.#closed) {
      link.close();
      return;
    }
    this.#allLinks.add(link);
    if (!this.#links.has(link.peerOnion)) this.#links.set(link.peerOnion, link);
    link.onClose(() => {
      this.#allLinks.delete(link);
      if (this.#links.get(link.peerOnion) === link) this.#links.delete(link.peerOnion);
    });
    this.#options.onEvent?.({ type: 'link', direction, peer: link.peerOnion });
  }

  /** Runs the link handshake on an incoming channel, then serves it. Failures only close that channel. */
  async acceptChannel(channel: ByteChannel): Promise<void> {
    try {
      const link = await acceptLink(channel, this.key, this.#linkOptions());
      this.#adopt(link, 'inbound');
    } catch (e) {
      log('inbound link refused: %s', (e as Error).message);
    }
  }

  /** Listens for TCP links on `host:port` (0 = any free port); resolves with the bound address. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => {
      tuneSocket(socket);
      socket.on('error', () => {});
      void this.acceptChannel(channelFromDuplex(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.add(server);
    const a = server.address();
    return { host, port: typeof a === 'object' && a ? a.port : port };
  }

  /** Stops listening, closes every link (circuits end), and the exit's streams. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#servers) s.close();
    this.#servers.clear();
    this.#exits.closeAll();
    for (const l of [...this.#allLinks]) l.close();
  }

  // ── circuits ──────────────────────────────────────────────────────────────────────────────────────

  #onNewCell(link: Link, cell: Cell): void {
    if (cell.cmd !== CMD_CREATE || !link.isPeerId(cell.circId)) {
      // a late cell for a circuit already torn down (a CREATED after its extend timed out, cells in flight
      // behind a DESTROY): drop it, and free the neighbour's side; never the whole link, which carries others
      if (cell.cmd === CMD_CREATED || (cell.cmd === CMD_CREATE && !link.isPeerId(cell.circId))) {
        link.send(encodeCell(cell.circId, CMD_DESTROY, Uint8Array.of(reasonByte('protocol'))));
      }
      return;
    }
    if (this.#circuits >= (this.#options.maxCircuits ?? MAX_CIRCUITS_PER_RELAY)) {
      link.send(encodeCell(cell.circId, CMD_DESTROY, Uint8Array.of(reasonByte('resource-limit'))));
      return;
    }
    let answer: ReturnType<typeof answerCreate>;
    try {
      answer = answerCreate(this.key, cell.body);
    } catch {
      link.send(encodeCell(cell.circId, CMD_DESTROY, Uint8Array.of(reasonByte('bad-handshake'))));
      return;
    }
    const circ = new RelayCircuit(this, { link, id: cell.circId }, answer.layers);
    this.#circuits++;
    link.register(cell.circId, {
      onCell: (c) => this.#fromPrev(circ, c),
      onLinkClosed: () => this.#close(circ, 'link-lost', 'prev'),
    });
    link.send(encodeCell(cell.circId, CMD_CREATED, answer.created), cell.circId);
    this.#options.onEvent?.({ type: 'circuit-created' });
  }

  #fromPrev(circ: RelayCircuit, cell: Cell): void {
    if (circ.closed) return;
    if (cell.cmd === CMD_DESTROY) {
      this.#close(circ, reasonOf(cell.body[0] as number), 'prev');
      return;
    }
    if (!isRelayCommand(cell.cmd)) {
      this.#close(circ, 'protocol', null);
      return;
    }
    const plain = relayOpenForward(circ.layers, cell.body);
    if (!plain) {
      // the previous hop (or whoever sealed for us) changed, dropped, replayed or reordered a cell
      this.#options.onEvent?.({ type: 'tampering', direction: 'forward' });
      this.#truncate(circ, 'tampered');
      return;
    }
    if (!isRecognized(plain)) {
      const next = circ.next;
      if (!next || circ.extending) {
        this.#close(circ, 'protocol', null);
        return;
      }
      const head = Buffer.allocUnsafe(CELL_HEADER_LEN);
      head.writeUInt32BE(next.id >>> 0, 0);
      head[4] = cell.cmd;
      let out: CellBytes = forwardParts(head, plain);
      const mutate = this.#options.hooks?.mutate;
      if (mutate) out = Buffer.concat([head, mutate('forward', Buffer.concat(out.slice(1)))]);
      this.sendCell(circ, next, out);
      return;
    }
    let msg: RelayMessage;
    try {
      msg = parseMessage(plain);
      this.#handleOwn(circ, msg);
    } catch (e) {
      log('circuit torn down: %s', (e as Error).message);
      this.#truncate(
        circ,
        e instanceof MeshError && e.reason !== 'protocol' ? (e.reason as Reason) : 'protocol',
      );
    }
  }

  #handleOwn(circ: RelayCircuit, msg: RelayMessage): void {
    switch (msg.cmd) {
      case MSG_BEACON:
        circ.send(MSG_BEACON_ACK, 0, msg.data);
        return;
      case MSG_EXTEND:
        this.#extend(circ, msg);
        return;
      default:
        if (circ.next) throw new MeshError('protocol', `message ${msg.cmd} for a middle hop`);
        if (!this.#exits.handle(circ, msg)) throw new MeshError('protocol', `unexpected message ${msg.cmd}`);
    }
  }

  #extend(circ: RelayCircuit, msg: RelayMessage): void {
    if (circ.next || circ.extending || circ.set)
      throw new MeshError('protocol', 'EXTEND on an extended circuit');
    const req = parseExtend(msg.data);
    if (sameKey(req.publicKey, this.key.publicKey))
      throw new MeshError('protocol', 'EXTEND to this relay itself');
    let tcp: { host: string; port: number } | undefined;
    if (req.addr !== '') {
      const { host, port } = splitHostPort(req.addr, 'EXTEND address');
      tcp = { host, port: Number(port) };
      if (!Number.isInteger(tcp.port) || tcp.port < 1 || tcp.port > 65535)
        throw new MeshError('protocol', 'bad port');
    }
    const onion = onionFromPublicKey(req.publicKey);
    const timer = setTimeout(() => this.#truncate(circ, 'timeout'), HOP_BUILD_TIMEOUT_MS * (tcp ? 1 : 6));
    timer.unref();
    circ.extending = { timer };
    this.#linkTo({ publicKey: req.publicKey, onion, tcp }).then(
      (link) => {
        if (circ.closed) return;
        const id = link.allocCircId();
        circ.next = { link, id };
        link.register(id, {
          onCell: (c) => this.#fromNext(circ, c),
          // silence (the link's dead-link rule) is told apart from a closed socket: a silent exit may be alive
          onLinkClosed: (e) => this.#truncate(circ, e.reason === 'timeout' ? 'link-timeout' : 'link-lost'),
        });
        link.send(encodeCell(id, CMD_CREATE, req.create), id);
      },
      (e) => {
        log('EXTEND to %s failed: %s', onion, (e as Error).message);
        if (!circ.closed) this.#truncate(circ, 'hop-unreachable');
      },
    );
  }

  /** A link to a relay: reuse one to that key, or dial it (one dial per key at a time). */
  async #linkTo(target: {
    publicKey: Uint8Array;
    onion: string;
    tcp: { host: string; port: number } | undefined;
  }): Promise<Link> {
    const existing = this.#links.get(target.onion);
    if (existing && !existing.closed) return existing;
    let pending = this.#dialing.get(target.onion);
    if (!pending) {
      pending = dialLink(target, {
        self: this.key,
        onionDialer: this.#options.onionDialer,
        ...this.#linkOptions(),
      });
      this.#dialing.set(target.onion, pending);
      pending.then(
        (l) => {
          this.#dialing.delete(target.onion);
          this.#adopt(l, 'outbound');
        },
        () => this.#dialing.delete(target.onion),
      );
    }
    return pending;
  }

  #fromNext(circ: RelayCircuit, cell: Cell): void {
    if (circ.closed) return;
    if (cell.cmd === CMD_CREATED && circ.extending) {
      clearTimeout(circ.extending.timer);
      circ.extending = null;
      circ.send(MSG_EXTENDED, 0, cell.body);
      return;
    }
    if (cell.cmd === CMD_DESTROY) {
      // the far side ended; whoever found the cause already sent TRUNCATED towards the client
      this.#close(circ, reasonOf(cell.body[0] as number), 'next');
      return;
    }
    if (!isRelayCommand(cell.cmd) || circ.extending) {
      this.#close(circ, 'protocol', null);
      return;
    }
    // the cell goes out as parts (header and tag, then the ciphertext GCM returned): no 16 KiB copy per cell
    let out: CellBytes = circ.layers.backward.sealParts(
      [cell.body.subarray(0, cell.body.length - TAG_LEN)],
      cellHead(circ.prev.id, cell.cmd),
      CELL_HEADER_LEN,
    );
    const mutate = this.#options.hooks?.mutate;
    if (mutate) {
      const joined = Buffer.concat(out);
      out = Buffer.concat([
        joined.subarray(0, CELL_HEADER_LEN),
        mutate('backward', joined.subarray(CELL_HEADER_LEN)),
      ]);
    }
    this.sendCell(circ, circ.prev, out);
  }

  /** Queues an encoded cell towards one neighbour of `circ`, within the circuit's queue bound. */
  sendCell(circ: RelayCircuit, side: Side, cell: CellBytes): void {
    if (side.link.queuedFor(side.id) > MAX_CIRCUIT_QUEUE) {
      // an end that ignores its windows (or a neighbour that stopped reading): bounded, never buffered on
      this.#truncate(circ, 'resource-limit');
      return;
    }
    try {
      side.link.send(cell, side.id);
    } catch {
      // the link is closing; its close handler ends the circuit
    }
  }

  /** Tells the client why (a TRUNCATED under our layer), then ends the circuit both ways. */
  #truncate(circ: RelayCircuit, reason: Reason): void {
    if (circ.closed) return;
    log('circuit %d from %s truncated: %s', circ.prev.id, circ.prev.link.peerOnion, reason);
    if (!circ.prev.link.closed) {
      try {
        circ.send(MSG_TRUNCATED, 0, Uint8Array.of(reasonByte(reason)));
      } catch {
        // nothing to tell
      }
    }
    this.#close(circ, reason, null);
  }

  /** Ends a circuit: DESTROY to each side that did not end it, forget it. */
  #close(circ: RelayCircuit, reason: Reason, from: 'prev' | 'next' | null): void {
    if (circ.closed) return;
    circ.closed = true;
    this.#circuits--;
    if (circ.extending) clearTimeout(circ.extending.timer);
    const destroy = Uint8Array.of(reasonByte(reason));
    for (const [side, name] of [
      [circ.prev, 'prev'],
      [circ.next, 'next'],
    ] as const) {
      if (!side) continue;
      side.link.unregister(side.id);
      if (from !== name && !side.link.closed) {
        try {
          side.link.send(encodeCell(side.id, CMD_DESTROY, destroy));
        } catch {
          // closing anyway
        }
      }
    }
    circ.set?.leave(circ);
    circ.layers.forward.destroy();
    circ.layers.backward.destroy();
    this.#options.onEvent?.({ type: 'circuit-closed', reason });
  }
}
