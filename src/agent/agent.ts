import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { ERROR_CODES, type ErrorCode, MmogitError } from '../errors.js';
import { AgentKey } from '../identity/keys.js';
import { normaliseMnemonic } from '../identity/mnemonic.js';
import { CONFIG_FILES, loadIdentity, resolveConfigDir, saveIdentity } from '../identity/store.js';
import type { Entry, MemoryInput, Visibility } from '../memory/entry.js';
import type { MemoryStore, RecallFilter, VerifiedEntry } from '../memory/store.js';
import type { PingResult, ReceivedMessage, SendResult } from './messaging.js';
import type { AgentRuntime, AgentStartOptions, DiscoveredAgent, SyncPeerResult } from './runtime.js';

export interface AgentOpenOptions {
  /** Config dir (default `$MMOGIT_HOME` or `~/.mmogit`). */
  configDir?: string;
}

export interface AgentInitOptions extends AgentOpenOptions {
  /** Restore from this 24-word phrase; without it a new phrase is generated. */
  mnemonic?: string;
  /** Replace an existing identity. */
  force?: boolean;
}

/**
 * An mmogit agent: one identity, its git-backed memory and — once started — its tor, onion service and libp2p
 * node. The SDK's front door; the CLI's commands are thin wrappers over it.
 *
 * Offline methods (address, remember, recall, post) never load the network stack; `start()` loads it lazily.
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
export class Agent extends EventEmitter {
  readonly configDir: string;
  readonly key: AgentKey;
  private store: MemoryStore | null = null;
  private storeOpening: Promise<MemoryStore> | null = null;
  private runtime: AgentRuntime | null = null;

  private constructor(configDir: string, key: AgentKey) {
    super();
    this.configDir = configDir;
    this.key = key;
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
    this.storeOpening ??= import('../memory/store.js').then(({ MemoryStore }) =>
      MemoryStore.open(join(this.configDir, CONFIG_FILES.memory), this.key),
    );
    this.store = await this.storeOpening;
    return this.store;
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
    this.runtime = await startRuntime(this, store, options);
    return { onion: this.address };
  }

  /** Stops everything `start()` started (idempotent). The memory store stays usable. */
  async stop(): Promise<void> {
    const runtime = this.runtime;
    this.runtime = null;
    await runtime?.stop();
  }

  // ── Memory (offline) ────────────────────────────────────────────────────────────────────────────────

  /** Stores a structured memory (signed, committed to the agent's git repo). */
  async remember(input: MemoryInput): Promise<Entry> {
    return (await this.memory()).remember(input);
  }

  /** Shares one of this agent's private entries with peers (onions): an encrypted envelope per peer. */
  async share(entryId: string, peers: string[]): Promise<Entry[]> {
    return (await this.memory()).share(entryId, peers);
  }

  /** Writes a signed post. */
  async post(text: string, options: { tags?: string[]; visibility?: Visibility } = {}): Promise<Entry> {
    return (await this.memory()).post(text, options);
  }

  /** Memories and other entries (own and synced from peers), newest first, each re-verified. */
  async recall(filter: RecallFilter = {}): Promise<VerifiedEntry[]> {
    return (await this.memory()).recall(filter);
  }

  // ── Network (after start) ───────────────────────────────────────────────────────────────────────────

  /** Sends a signed, PQ-encrypted message; `queued` when the peer is unreachable (retried while running). */
  send(peer: string, text: string, options: { signal?: AbortSignal } = {}): Promise<SendResult> {
    return this.net().send(peer, text, options);
  }

  /** Received messages, each re-verified. New ones also arrive as `message` events. */
  inbox(options: { limit?: number } = {}): Promise<ReceivedMessage[]> {
    return this.net().inbox(options);
  }

  /** Reaches a peer: verified identity, transport, handshake and round-trip time. */
  connect(peer: string, options: { signal?: AbortSignal } = {}): Promise<PingResult> {
    return this.net().connect(peer, options);
  }

  /** Publishes this agent's signed advertisement for `services` (re-published until stop). */
  advertise(
    services: string[],
    options: { ttlMs?: number; signal?: AbortSignal } = {},
  ): Promise<Record<string, unknown>> {
    return this.net().advertise(services, options);
  }

  /** Agents offering `service`, verified, as they are found. */
  discover(
    service: string,
    options: { signal?: AbortSignal; timeoutMs?: number; limit?: number } = {},
  ): AsyncIterable<DiscoveredAgent> {
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
      const code = (
        Object.hasOwn(ERROR_CODES, result.error.code) ? result.error.code : 'ERR_SYNC'
      ) as ErrorCode;
      throw new MmogitError(code, result.error.message, { details: { peer } });
    }
    return result;
  }

  /** Closes the memory store too (after stop). */
  async close(): Promise<void> {
    await this.stop();
    await this.store?.close();
    this.store = null;
    this.storeOpening = null;
  }
}
