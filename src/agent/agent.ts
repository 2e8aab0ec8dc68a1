import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AbortOptions } from '../_async.js';
import { MmogitError } from '../errors.js';
import { AgentKey } from '../identity/keys.js';
import { normaliseMnemonic } from '../identity/mnemonic.js';
import {
  CONFIG_FILES,
  loadIdentity,
  notADirectory,
  resolveConfigDir,
  saveIdentity,
} from '../identity/store.js';
import type { Entry, MemoryInput, Visibility } from '../memory/entry.js';
import type { MemoryStore, RecallFilter, VerifiedEntry } from '../memory/store.js';
import { AgentMesh } from '../mesh/agent-mesh.js';
import { diskFullError, isErrorCode } from './_errors.js';
import type { AgentEvents } from './agent-events.js';
import { ContactBook } from './contacts.js';
import type { SendFileOptions, SendFileResult } from './files-send.js';
import type {
  InboxFilter,
  MessageInput,
  PendingMessage,
  PingResult,
  ReceivedMessage,
  SendResult,
} from './messaging-types.js';
import type {
  AgentRuntime,
  AgentStartOptions,
  DiscoveredAgent,
  PingReport,
  SyncPeerResult,
} from './runtime-types.js';

/** `agent.a2a`: A2A v1.0 through this agent's tor (after `start()`); docs/a2a.md. */
export interface AgentA2aApi {
  /** The stock `@a2a-js/sdk` client for `target` (onion or URL), its card checked against the onion. */
  client(
    target: string,
    options?: { verifyCard?: boolean; timeoutMs?: number },
  ): Promise<{
    client: import('@a2a-js/sdk/client').Client;
    card: import('@a2a-js/sdk').AgentCard;
    verified: boolean;
  }>;
  /** Sends `text` (and `data`), signed with this agent's key, and returns the answer. */
  send(
    target: string,
    text: string,
    options?: { data?: unknown; verifyCard?: boolean; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<import('../a2a/send.js').A2aSendResult>;
  /** Messages received over A2A (started with `a2a`), oldest first. */
  inbound(): Promise<import('../a2a/journal.js').A2aInboundMessage[]>;
}

export interface AgentOpenOptions {
  /** Config dir (default `$MMOGIT_HOME` or `~/.mmogit`). */
  configDir?: string;
}

export interface AgentInitOptions extends AgentOpenOptions {
  /** Restore from this BIP39 phrase (12, 15, 18, 21 or 24 words); without it a new 24-word phrase is generated. */
  mnemonic?: string;
  /** Replace an existing identity. */
  force?: boolean;
}

/** A memory write's failure, with a full disk as `ERR_DISK_FULL` (see `diskFullError`). */
function rethrowDiskFull(what: string): (e: unknown) => never {
  return (e) => {
    throw diskFullError(e, what);
  };
}

/**
 * An mmogit agent: one identity, its git-backed memory and — once started — its tor, onion service and libp2p
 * node. The SDK's front door; the CLI's commands are thin wrappers over it.
 *
 * Offline methods (address, remember, recall, post) never load the network stack; `start()` loads it lazily.
 * Events are typed ({@link AgentEvents}): `message` ({@link ReceivedMessage}), `delivered`, `queued`, `event`.
 *
 * @example
 * ```ts
 * import { Agent } from 'mmogit';
 * const agent = await Agent.open({ configDir: '/tmp/alice' });
 * await agent.start({ network: process.env.MMOGIT_TOR_NETWORK });
 * agent.on('message', (m) => console.log(m.from, m.text));
 * await agent.send(bobOnion, 'hello');
 * await agent.stop();
 * ```
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly configDir: string;
  readonly key: AgentKey;
  /** Local aliases for peers (`<configDir>/contacts.json`); every peer argument takes an alias too. */
  readonly contacts: ContactBook;
  private store: MemoryStore | null = null;
  private storeOpening: Promise<MemoryStore> | null = null;
  private runtime: AgentRuntime | null = null;
  #mesh: AgentMesh | null = null;

  private constructor(configDir: string, key: AgentKey) {
    super();
    this.configDir = configDir;
    this.key = key;
    this.contacts = new ContactBook(configDir);
  }

  /**
   * The onion `peer` names: an onion address, or a contact's alias.
   *
   * @throws `ERR_UNKNOWN_CONTACT`, `ERR_INVALID_ONION`.
   */
  resolvePeer(peer: string): Promise<string> {
    return this.contacts.resolve(peer);
  }

  /** Creates (or restores) the identity in the config dir and opens the agent. */
  static async init(options: AgentInitOptions = {}): Promise<{ agent: Agent; mnemonic?: string }> {
    const configDir = resolveConfigDir(options.configDir);
    let key: AgentKey;
    let mnemonic: string | undefined;
    if (options.mnemonic !== undefined) {
      key = AgentKey.fromMnemonic(normaliseMnemonic(options.mnemonic));
    } else {
      const generated = AgentKey.generate();
      key = generated.key;
      mnemonic = generated.mnemonic;
    }
    await saveIdentity(configDir, key, { force: options.force ?? false });
    const agent = new Agent(configDir, key);
    await agent.memory(); // create the repo now, so a fresh agent is complete on disk
    return mnemonic ? { agent, mnemonic } : { agent };
  }

  /** Opens an initialised agent (identity must exist; see {@link Agent.init}). */
  static async open(options: AgentOpenOptions = {}): Promise<Agent> {
    const configDir = resolveConfigDir(options.configDir);
    return new Agent(configDir, await loadIdentity(configDir));
  }

  /** This agent's `<56 chars>.onion` address. */
  get address(): string {
    return this.key.onion;
  }

  get publicKeyHex(): string {
    return this.key.publicKeyHex;
  }

  /** The git-backed memory store (opened on first use). */
  async memory(): Promise<MemoryStore> {
    if (this.store) return this.store;
    const dir = join(this.configDir, CONFIG_FILES.memory);
    this.storeOpening ??= (async () => {
      // A file where the repository belongs is a config error, not a failed mkdir (ERR_INTERNAL).
      const found = await stat(dir).catch(() => null);
      if (found && !found.isDirectory()) throw notADirectory(dir, 'memory repository');
      const { MemoryStore } = await import('../memory/store.js');
      return MemoryStore.open(dir, this.key);
    })();
    this.store = await this.storeOpening;
    return this.store;
  }

  /** The post-quantum mesh of this agent: relaying, client circuits, a SOCKS entry (docs/mesh.md). */
  get mesh(): AgentMesh {
    this.#mesh ??= new AgentMesh({ key: this.key, configDir: this.configDir, runtime: () => this.runtime });
    return this.#mesh;
  }

  /** Whether `start()` has completed and `stop()` has not been called. */
  get running(): boolean {
    return this.runtime !== null;
  }

  /** The network side; throws ERR_DAEMON_NOT_RUNNING before `start()`. */
  net(): AgentRuntime {
    if (!this.runtime)
      throw new MmogitError('ERR_DAEMON_NOT_RUNNING', 'agent is not started (call start() first)');
    return this.runtime;
  }

  /**
   * Starts tor (spawned, or attached with `torControl`), publishes the onion service, starts the libp2p node with
   * messaging, discovery and memory sync, and retries the outbox. Resolves when the onion is published.
   */
  async start(options: AgentStartOptions = {}): Promise<{ onion: string }> {
    if (this.runtime) throw new MmogitError('ERR_DAEMON_RUNNING', 'agent is already started');
    const { startRuntime } = await import('./runtime.js');
    const store = await this.memory();
    this.runtime = await startRuntime(
      {
        key: this.key,
        configDir: this.configDir,
        emit: this.emit.bind(this),
        resolvePeer: (p) => this.resolvePeer(p),
        meshConnect: (onion, port, o) => this.mesh.connectRoute(onion, port, o),
      },
      store,
      options,
    );
    return { onion: this.address };
  }

  /** Stops everything `start()` started (idempotent). The memory store stays usable. */
  async stop(): Promise<void> {
    await this.#mesh?.close();
    const runtime = this.runtime;
    this.runtime = null;
    await runtime?.stop();
  }

  // ── Memory (offline) ────────────────────────────────────────────────────────────────────────────────

  /** Stores a structured memory (signed, committed to the agent's git repo); `shareWith` takes aliases too. */
  async remember(input: MemoryInput): Promise<Entry> {
    const shareWith = input.shareWith
      ? await Promise.all(input.shareWith.map((p) => this.resolvePeer(p)))
      : undefined;
    return (await this.memory())
      .remember(shareWith ? { ...input, shareWith } : input)
      .catch(rethrowDiskFull('remember'));
  }

  /** Shares one of this agent's private entries with peers (onions or aliases): an encrypted envelope per peer. */
  async share(entryId: string, peers: string[]): Promise<Entry[]> {
    const onions = await Promise.all(peers.map((p) => this.resolvePeer(p)));
    return (await this.memory()).share(entryId, onions).catch(rethrowDiskFull('share'));
  }

  /** Writes a signed post. */
  async post(text: string, options: { tags?: string[]; visibility?: Visibility } = {}): Promise<Entry> {
    return (await this.memory()).post(text, options).catch(rethrowDiskFull('post'));
  }

  /**
   * Memories and other entries (own and synced from peers), newest first, each re-verified. `author` is an
   * onion, a public key (hex) or a contact's alias.
   */
  async recall(filter: RecallFilter = {}): Promise<VerifiedEntry[]> {
    const author =
      filter.author === undefined || /^[0-9a-f]{64}$/.test(filter.author)
        ? filter.author
        : await this.resolvePeer(filter.author);
    return (await this.memory()).recall(author === undefined ? filter : { ...filter, author });
  }

  // ── Network (after start) ───────────────────────────────────────────────────────────────────────────

  /**
   * Sends a signed, PQ-encrypted message to `peer` (an onion or an alias): a text, or a typed, threaded
   * message with a JSON body ({@link MessageInput}). `queued` when the peer is unreachable (retried while
   * running).
   *
   * @example
   * await agent.send('bob', { type: 'task-proposal', body: { task: 'index' }, meta: { due: '2026-12-31' } });
   * @throws `ERR_UNKNOWN_CONTACT`, `ERR_TOO_LARGE`, `ERR_INVALID_ARGUMENT`, `ERR_PEER_UNSUPPORTED` (see
   *   docs/protocol.md §5.10).
   */
  send(peer: string, message: string | MessageInput, options: AbortOptions = {}): Promise<SendResult> {
    return this.net().send(peer, message, options);
  }

  /**
   * Sends the file at `path` to `peer` (an onion or an alias) over its own PQ session, streamed in chunks from
   * disk (never whole in memory), resumed from the last acknowledged offset after a drop, and sha256-checked
   * by the receiver, which lists it in its inbox as a message of type `file` (body: name, size, sha256).
   *
   * @example
   * const r = await agent.sendFile('bob', './report.pdf', { onProgress: (e) => console.error(e.phase, e.bytes) });
   * @throws `ERR_FILE_UNREADABLE`, `ERR_FILE_TOO_LARGE`, `ERR_FILE_CHANGED`, `ERR_FILE_HASH_MISMATCH`,
   *   `ERR_UNKNOWN_CONTACT`, a network error once its attempts are used up (docs/protocol.md §9).
   */
  async sendFile(peer: string, path: string, options: SendFileOptions = {}): Promise<SendFileResult> {
    return this.net().sendFile(peer, resolve(path), options);
  }

  /**
   * Received messages in receive order, each re-verified and with its `cursor`; filter by `from` (onion or
   * alias), `type`, `thread`, `since` (a cursor), `limit`. New ones also arrive as `message` events.
   */
  inbox(filter: InboxFilter = {}): Promise<ReceivedMessage[]> {
    return this.net().inbox(filter);
  }

  /**
   * Every received message after `since` (a cursor), then each new one as it arrives, filtered like
   * {@link inbox}; ends when `signal` fires or the agent stops. Keep the last `cursor` to resume later.
   *
   * @example
   * for await (const m of agent.messages({ since: saved, signal })) { handle(m); saved = m.cursor; }
   */
  messages(
    options: Omit<InboxFilter, 'limit'> & { signal?: AbortSignal } = {},
  ): AsyncIterable<ReceivedMessage> {
    return this.net().messages(options);
  }

  /** Reaches a peer (onion or alias): verified identity, transport, handshake and round-trip time. */
  connect(peer: string, options: { signal?: AbortSignal; fresh?: boolean } = {}): Promise<PingResult> {
    return this.net().connect(peer, options);
  }

  /** `count` pings (default 1) over one session to `peer`: each round trip, its identity and route. */
  ping(
    peer: string,
    options: { signal?: AbortSignal; count?: number; fresh?: boolean } = {},
  ): Promise<PingReport> {
    return this.net().ping(peer, options);
  }

  /** Messages waiting for an ack, oldest first, with their attempts and last error. */
  outbox(): PendingMessage[] {
    return this.net().outbox();
  }

  /** Attempts queued message `id` now (`ERR_NOT_FOUND` when none waits). */
  retryQueued(id: string, options: { signal?: AbortSignal } = {}): ReturnType<AgentRuntime['retryQueued']> {
    return this.net().retryQueued(id, options);
  }

  /** Gives up on queued message `id`: it leaves the outbox unsent (`ERR_NOT_FOUND` when none waits). */
  dropQueued(id: string): Promise<{ id: string; to: string }> {
    return this.net().dropQueued(id);
  }

  /** Publishes this agent's signed advertisement for `services` (re-published until stop). */
  advertise(
    services: string[],
    options: { ttlMs?: number; signal?: AbortSignal } = {},
  ): Promise<Record<string, unknown>> {
    return this.net().advertise(services, options);
  }

  /** Agents offering `service`, verified, as they are found. */
  discover(service: string, options: AbortOptions & { limit?: number } = {}): AsyncIterable<DiscoveredAgent> {
    return this.net().discover(service, options);
  }

  /** Syncs memory with one peer, both directions. */
  async sync(
    peer: string,
    options: {
      signal?: AbortSignal;
      timeoutMs?: number;
      onProgress?: (e: Record<string, unknown>) => void;
    } = {},
  ): Promise<SyncPeerResult> {
    const [result] = await this.net().syncMany([peer], options);
    if (!result) throw new MmogitError('ERR_INTERNAL', 'sync returned no result');
    if (result.error) {
      const code = isErrorCode(result.error.code) ? result.error.code : 'ERR_SYNC';
      throw new MmogitError(code, result.error.message, { details: { peer } });
    }
    return result;
  }

  /** A2A through this agent's tor: call any A2A agent (mmogit or not) behind an onion or a URL. */
  get a2a(): AgentA2aApi {
    const socks = () => ({ socksHost: this.net().tor.socksHost, socksPort: this.net().tor.socksPort });
    return {
      client: async (target, options = {}) =>
        (await import('../a2a/client.js')).a2aClient(target, { ...socks(), ...options }),
      send: async (target, text, options = {}) =>
        (await import('../a2a/send.js')).a2aSend(target, text, { ...socks(), ...options, signAs: this.key }),
      inbound: async () => (await this.net().a2a?.inbound()) ?? [],
    };
  }

  /** Closes the memory store too (after stop). */
  async close(): Promise<void> {
    await this.stop();
    await this.store?.close();
    this.store = null;
    this.storeOpening = null;
  }
}
