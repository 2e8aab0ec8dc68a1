/**
 * A typed, promise-based tor controller shaped like stem's `Controller`: the commands, events and the bootstrap
 * wait. Authentication is in `auth.ts`, the ADD_ONION command line in `onion-command.ts`, bootstrap parsing in
 * `bootstrap.ts`.
 * @module
 */
import type { AbortOptions } from '../../_async.js';
import { abortReason, MmogitError, withTimeout } from '../../errors.js';
import { quote, tokenize } from './_strings.js';
import {
  type AuthenticateOptions,
  authenticateSocket,
  type ProtocolInfo,
  parseProtocolInfo,
} from './auth.js';
import {
  type BootstrapStatus,
  bootstrapFromArgs,
  DEFAULT_BOOTSTRAP_TIMEOUT_MS,
  parseBootstrap,
  type WaitForBootstrapOptions,
} from './bootstrap.js';
import { clip, TorControlError } from './errors.js';
import { parseEvent, type TorEvent } from './events.js';
import {
  type AddOnionRequest,
  type AddOnionResult,
  addOnionCommand,
  parseAddOnionReply,
} from './onion-command.js';
import { type ControlReply, isOk, keyValues } from './reply.js';
import { ControlSocket, type ControlTarget } from './socket.js';

export type { AuthenticateOptions, AuthMethod, ProtocolInfo } from './auth.js';
export {
  type BootstrapStatus,
  DEFAULT_BOOTSTRAP_TIMEOUT_MS,
  type WaitForBootstrapOptions,
} from './bootstrap.js';
export type { AddOnionRequest, AddOnionResult, OnionPort } from './onion-command.js';

export type TorSignal = 'NEWNYM' | 'SHUTDOWN' | 'HALT' | 'RELOAD' | 'DORMANT' | 'ACTIVE' | 'CLEARDNSCACHE';

type EventListener = (e: TorEvent) => void;

const CONF_KEY_RE = /^[A-Za-z0-9_]+$/;
const INFO_KEY_RE = /^[A-Za-z0-9_/.:=-]+$/;

function invalid(message: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', message);
}

/** Throws the typed error for a 4xx/5xx reply (`what` names the command; the raw reply never holds secrets we sent). */
function check(reply: ControlReply, what: string): ControlReply {
  if (isOk(reply)) return reply;
  const text = reply.lines[reply.lines.length - 1]?.text ?? '';
  throw new TorControlError(
    'ERR_TOR_CONTROL_OPERATION',
    `${what} failed: ${reply.status} ${clip(text, 200)}`,
    {
      details: { statusCode: reply.status, raw: clip(reply.raw) },
    },
  );
}

/** `host:port` or `[v6]:port` → parts. */
function parseHostPort(s: string): { host: string; port: number } | undefined {
  const i = s.lastIndexOf(':');
  if (i <= 0) return undefined;
  const host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(s.slice(i + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : undefined;
}

/**
 * A connection to tor's control port.
 *
 * @example
 * ```ts
 * const tor = await TorController.connect(await readControlPortFile(`${dataDir}/control.port`));
 * await tor.authenticate();                      // SAFECOOKIE, verifying tor's server hash
 * await tor.waitForBootstrap({ onProgress: (s) => console.error(s.progress) });
 * const { serviceId } = await tor.addOnion({ key: agent.addOnionKey(), ports: [{ virtualPort: 80, target: '127.0.0.1:8080' }] });
 * await tor.close();
 * ```
 */
export class TorController {
  private readonly listeners = new Set<EventListener>();
  private userEvents: string[] = [];
  private readonly internalEvents = new Map<string, number>();
  private protocolInfoPromise: Promise<ProtocolInfo> | undefined;

  private constructor(private readonly socket: ControlSocket) {
    socket.onEvent = (reply) => {
      let event: TorEvent;
      try {
        event = parseEvent(reply);
      } catch {
        // A malformed event must not break the connection; hand it over unparsed.
        const name = reply.lines[0]?.text.split(' ', 1)[0] ?? '';
        event = { type: 'UNKNOWN', name, raw: reply.raw };
      }
      for (const fn of [...this.listeners]) fn(event);
    };
  }

  /** Connects to a control port (TCP or Unix socket). Authenticate next. */
  static async connect(target: ControlTarget, options: AbortOptions = {}): Promise<TorController> {
    return new TorController(await ControlSocket.connect(target, options));
  }

  /** Resolves when the connection has closed (for whatever reason). */
  get closed(): Promise<void> {
    return this.socket.closed;
  }

  /** False once the connection has closed. */
  get isOpen(): boolean {
    return this.socket.isOpen;
  }

  /** Closes the connection; pending calls fail with `ERR_TOR_CONTROL_CLOSED`. */
  close(): Promise<void> {
    return this.socket.close();
  }

  /**
   * Sends a raw single-line command and returns its reply, throwing `ERR_TOR_CONTROL_OPERATION` on 4xx/5xx.
   * For commands without a typed method here.
   */
  async request(command: string, options: AbortOptions = {}): Promise<ControlReply> {
    const verb = command.split(' ', 1)[0] as string;
    return check(await this.socket.send(command, { ...options, what: verb }), verb);
  }

  /** `PROTOCOLINFO 1` (control-spec §3.21). Cached: tor allows only one before authentication. */
  protocolInfo(options: AbortOptions = {}): Promise<ProtocolInfo> {
    this.protocolInfoPromise ??= this.fetchProtocolInfo(options);
    const p = this.protocolInfoPromise;
    p.catch(() => {
      if (this.protocolInfoPromise === p) this.protocolInfoPromise = undefined;
    });
    return p;
  }

  private async fetchProtocolInfo(options: AbortOptions): Promise<ProtocolInfo> {
    return parseProtocolInfo(await this.request('PROTOCOLINFO 1', options));
  }

  /**
   * Authenticates (control-spec §3.5). Picks password auth when `password` is given, else SAFECOOKIE
   * (§3.24, checking tor's server hash before answering, so a fake control port cannot learn our proof); NULL
   * only when tor offers nothing else and `allowNull` is set. Plain COOKIE is never used (see {@link AuthMethod}).
   * A password is sent as is to whatever answers the port: prefer a Unix `ControlSocket` or SAFECOOKIE.
   *
   * @throws TorAuthError `ERR_TOR_AUTH_FAILED` (wrong secret, unreadable cookie, bad server hash) or
   *   `ERR_TOR_AUTH_UNSUPPORTED` (no usable method).
   */
  async authenticate(options: AuthenticateOptions = {}): Promise<void> {
    const io: AbortOptions = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    await authenticateSocket(this.socket, await this.protocolInfo(io), options, io);
  }

  /** `GETINFO key` (control-spec §3.9): the full value, including multi-line (`250+`) values. */
  async getInfo(key: string, options: AbortOptions = {}): Promise<string> {
    const all = await this.getInfoMany([key], options);
    return all[key] as string;
  }

  /** `GETINFO k1 k2 …` in one round trip. */
  async getInfoMany(keys: string[], options: AbortOptions = {}): Promise<Record<string, string>> {
    if (keys.length === 0) return {};
    for (const k of keys) if (!INFO_KEY_RE.test(k)) throw invalid(`invalid GETINFO key "${k}"`);
    const reply = await this.request(`GETINFO ${keys.join(' ')}`, options);
    const kv = keyValues(reply);
    const out: Record<string, string> = {};
    for (const k of keys) {
      const v = kv.get(k);
      if (v === undefined) {
        throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', `GETINFO reply lacks "${k}"`, {
          details: { raw: clip(reply.raw) },
        });
      }
      out[k] = v;
    }
    return out;
  }

  /** `GETCONF key` (control-spec §3.3): every value of the option (empty array when unset). */
  async getConf(key: string, options: AbortOptions = {}): Promise<string[]> {
    if (!CONF_KEY_RE.test(key)) throw invalid(`invalid option name "${key}"`);
    const reply = await this.request(`GETCONF ${key}`, options);
    const out: string[] = [];
    for (const line of reply.lines) {
      const eq = line.text.indexOf('=');
      if (eq !== -1 && line.text.slice(0, eq).toLowerCase() === key.toLowerCase())
        out.push(line.text.slice(eq + 1));
    }
    return out;
  }

  /**
   * `SETCONF` (control-spec §3.1): a string sets, an array sets a multi-valued option (one `K=V` each),
   * `null` or `[]` resets the option to its default.
   */
  async setConf(
    settings: Record<string, string | string[] | null>,
    options: AbortOptions = {},
  ): Promise<void> {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(settings)) {
      if (!CONF_KEY_RE.test(k)) throw invalid(`invalid option name "${k}"`);
      if (v === null || (Array.isArray(v) && v.length === 0)) parts.push(k);
      else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${quote(one)}`);
    }
    if (parts.length === 0) return;
    await this.request(`SETCONF ${parts.join(' ')}`, options);
  }

  /** `RESETCONF k1 k2 …` (control-spec §3.2): back to defaults. */
  async resetConf(keys: string[], options: AbortOptions = {}): Promise<void> {
    for (const k of keys) if (!CONF_KEY_RE.test(k)) throw invalid(`invalid option name "${k}"`);
    if (keys.length === 0) return;
    await this.request(`RESETCONF ${keys.join(' ')}`, options);
  }

  /**
   * `SETEVENTS` (control-spec §3.4): the events delivered to {@link on}/{@link events}. Replaces the previous
   * set; events this controller subscribes to internally (e.g. during {@link waitForBootstrap}) stay on.
   */
  async setEvents(events: string[], options: AbortOptions = {}): Promise<void> {
    for (const e of events) if (!/^[A-Z_]+$/.test(e)) throw invalid(`invalid event name "${e}"`);
    this.userEvents = [...new Set(events)];
    await this.syncEvents(options);
  }

  private async syncEvents(options: AbortOptions = {}): Promise<void> {
    const all = new Set([...this.userEvents, ...this.internalEvents.keys()]);
    await this.request(all.size ? `SETEVENTS ${[...all].join(' ')}` : 'SETEVENTS', options);
  }

  /** Adds a listener for every asynchronous event (subscribe with {@link setEvents}). */
  on(_event: 'event', fn: EventListener): this {
    this.listeners.add(fn);
    return this;
  }

  /** Removes a listener added with {@link on}. */
  off(_event: 'event', fn: EventListener): this {
    this.listeners.delete(fn);
    return this;
  }

  /**
   * The asynchronous events as an async iterable, from the moment of this call until `signal` fires or the
   * connection closes. Events are queued while the consumer is busy.
   */
  events(signal?: AbortSignal): AsyncIterableIterator<TorEvent> {
    const queue: TorEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const push = (e: TorEvent): void => {
      queue.push(e);
      wake?.();
    };
    const stop = (): void => {
      done = true;
      this.off('event', push);
      signal?.removeEventListener('abort', stop);
      wake?.();
    };
    this.on('event', push);
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    void this.closed.then(stop);
    const it: AsyncIterableIterator<TorEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        const value = queue.shift();
        return value ? { value, done: false } : { value: undefined, done: true };
      },
      return: async () => {
        stop();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * `ADD_ONION` (control-spec §3.27). Returns the ServiceID (and the new key for `NEW:` without DiscardPK).
   * Unless `Detach` is in `flags`, tor removes the service when this connection closes.
   */
  async addOnion(req: AddOnionRequest, options: AbortOptions = {}): Promise<AddOnionResult> {
    // `what` keeps the key out of every error message.
    const command = addOnionCommand(req);
    return parseAddOnionReply(
      check(await this.socket.send(command, { ...options, what: 'ADD_ONION' }), 'ADD_ONION'),
    );
  }

  /** `DEL_ONION` (control-spec §3.38). Unknown ids fail with statusCode 552. */
  async delOnion(serviceId: string, options: AbortOptions = {}): Promise<void> {
    const id = serviceId.endsWith('.onion') ? serviceId.slice(0, -6) : serviceId;
    if (!/^[a-z2-7]{56}$/.test(id)) {
      throw new MmogitError('ERR_INVALID_ONION', `invalid onion service id "${clip(serviceId, 80)}"`);
    }
    await this.request(`DEL_ONION ${id}`, options);
  }

  /**
   * `SIGNAL` (control-spec §3.7). NEWNYM: new circuits for new streams (tor rate-limits it to one per ~10 s
   * and still answers 250 OK); SHUTDOWN/HALT end tor (the connection then closes).
   */
  async signal(name: TorSignal, options: AbortOptions = {}): Promise<void> {
    if (!/^[A-Z]+$/.test(name)) throw invalid(`invalid signal "${name}"`);
    await this.request(`SIGNAL ${name}`, options);
  }

  /**
   * `TAKEOWNERSHIP` then `RESETCONF __OwningControllerProcess` (control-spec §3.23): tor exits when this
   * connection closes, rather than when the process named in `__OwningControllerProcess` dies.
   */
  async takeOwnership(options: AbortOptions = {}): Promise<void> {
    await this.request('TAKEOWNERSHIP', options);
    await this.request('RESETCONF __OwningControllerProcess', options);
  }

  /** Where tor's SOCKS ports listen (`GETINFO net/listeners/socks`; the value is a list of quoted strings). */
  async socksListeners(options: AbortOptions = {}): Promise<{ host: string; port: number }[]> {
    const value = await this.getInfo('net/listeners/socks', options);
    const out: { host: string; port: number }[] = [];
    for (const t of tokenize(value)) {
      const hp = 'word' in t ? parseHostPort(t.word) : undefined;
      if (hp) out.push(hp);
    }
    return out;
  }

  /** `GETINFO status/bootstrap-phase`, parsed. */
  async bootstrapStatus(options: AbortOptions = {}): Promise<BootstrapStatus> {
    return parseBootstrap(await this.getInfo('status/bootstrap-phase', options));
  }

  /**
   * Waits until tor reports 100 % bootstrap, reporting each step (STATUS_CLIENT BOOTSTRAP events,
   * control-spec §4.1.10). A problem tor flags `RECOMMENDATION=warn` fails with `ERR_TOR_BOOTSTRAP` unless
   * `onWarning: 'continue'`; `RECOMMENDATION=ignore` problems are only reported.
   */
  async waitForBootstrap(options: WaitForBootstrapOptions = {}): Promise<void> {
    const what = 'tor bootstrap';
    const timeoutMs = options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    const signal = withTimeout(options.signal, timeoutMs, what);
    const io: AbortOptions = { signal };
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const finished = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    let last = -1;
    const handle = (s: BootstrapStatus): void => {
      if (s.progress !== last || s.warning !== undefined) options.onProgress?.(s);
      last = s.progress;
      if (s.progress >= 100) settle.resolve();
      else if (s.warning !== undefined && s.recommendation === 'warn' && options.onWarning !== 'continue') {
        settle.reject(
          new MmogitError(
            'ERR_TOR_BOOTSTRAP',
            `tor bootstrap stuck at ${s.progress}% (${s.tag}): ${s.warning}`,
            {
              details: { ...s },
            },
          ),
        );
      }
    };
    const listener: EventListener = (e) => {
      if (e.type !== 'STATUS_CLIENT' || e.args.PROGRESS === undefined) return;
      if (e.action !== 'BOOTSTRAP' && e.action !== 'BOOTSTRAP_PROBLEM') return;
      try {
        handle(bootstrapFromArgs(e.severity, e.args, e.raw));
      } catch (err) {
        settle.reject(err);
      }
    };
    if (signal.aborted) throw abortReason(signal, what);
    finished.catch(() => {}); // observed below; avoids an unhandled rejection while we are still subscribing
    const onAbort = (): void => settle.reject(abortReason(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    void this.closed.then(() =>
      settle.reject(new TorControlError('ERR_TOR_CONTROL_CLOSED', `${what}: tor control connection closed`)),
    );
    this.on('event', listener);
    this.internalEvents.set('STATUS_CLIENT', (this.internalEvents.get('STATUS_CLIENT') ?? 0) + 1);
    try {
      // Subscribe first, then read the current phase, so no step falls between the two.
      await Promise.race([this.syncEvents(io), finished]);
      const now = await Promise.race([this.bootstrapStatus(io), finished]);
      if (now) handle(now);
      await finished;
    } finally {
      this.off('event', listener);
      signal.removeEventListener('abort', onAbort);
      const c = (this.internalEvents.get('STATUS_CLIENT') ?? 1) - 1;
      if (c <= 0) this.internalEvents.delete('STATUS_CLIENT');
      else this.internalEvents.set('STATUS_CLIENT', c);
      if (this.socket.isOpen) await this.syncEvents().catch(() => {});
    }
  }
}
