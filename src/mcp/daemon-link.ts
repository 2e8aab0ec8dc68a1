/**
 * What the MCP server needs from the agent: calls to the running agent daemon (over its Unix socket, see
 * src/agent/ipc.ts) and the agent's memory repository. The MCP process keeps no state of its own: every tool
 * call asks the daemon or reads the git repository again, so two hosts (or a host and the CLI) never see two
 * versions of the agent.
 * @module
 */
import { callDaemon } from '../agent/daemon.js';
import type { IpcCallOptions } from '../agent/ipc.js';
import { MmogitError } from '../errors.js';
import { loadIdentity, resolveConfigDir } from '../identity/store.js';
import type { MemoryStore } from '../memory/store.js';

/** How the MCP server reaches the agent. One implementation talks to the daemon; tests use the same one. */
export interface AgentLink {
  readonly configDir: string;
  /** This agent's onion and public key (from the identity file; no daemon needed). */
  identity(): Promise<{ onion: string; pubkey: string }>;
  /** Calls a daemon IPC method; rejects `ERR_DAEMON_NOT_RUNNING` when no daemon answers. */
  call<T>(method: string, params: Record<string, unknown>, options?: IpcCallOptions): Promise<T>;
  /** Runs `fn` with the memory store opened for this call only, closed afterwards. */
  withMemory<T>(fn: (store: MemoryStore) => Promise<T>): Promise<T>;
}

/** The daemon-backed {@link AgentLink} of a config dir. */
export function daemonLink(configDir?: string): AgentLink {
  const dir = resolveConfigDir(configDir);
  return {
    configDir: dir,
    async identity() {
      const key = await loadIdentity(dir);
      return { onion: key.onion, pubkey: key.publicKeyHex };
    },
    call<T>(method: string, params: Record<string, unknown>, options: IpcCallOptions = {}) {
      return callDaemon<T>(dir, method, params, options);
    },
    async withMemory(fn) {
      // Imported lazily: the memory layer loads isomorphic-git, which a host's `tools/list` never needs.
      const { Agent } = await import('../agent/agent.js');
      const agent = await Agent.open({ configDir: dir });
      try {
        return await fn(await agent.memory());
      } finally {
        await agent.close();
      }
    },
  };
}

/** The daemon answers `unknown daemon method` when it predates a method: say which feature is missing. */
export function unsupported(e: unknown, what: string): never {
  if (e instanceof MmogitError && e.code === 'ERR_DAEMON_IPC' && /unknown daemon method/.test(e.message)) {
    throw new MmogitError('ERR_DAEMON_IPC', `the running daemon does not support ${what} (restart it)`, {
      cause: e,
    });
  }
  throw e;
}
