/**
 * File transfer as a protocol of the agent's node: each transfer is its own stream (`/mmogit/file/1.0.0`)
 * with its own hybrid PQ session (src/pqc), so a 50 MB file never queues the messaging link's small frames
 * behind it, and dropping one transfer's stream leaves messaging alone. The receiving side lists a stored
 * file's signed offer through the messenger (`Messenger.storeVerified`), so it shows in the inbox, in
 * `messages()` and to hooks like any message.
 * @module
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../_log.js';
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import { acceptSession, initiateSession } from '../pqc/handshake.js';
import { FileReceiver, type FileSession } from './files-receive.js';
import {
  type FileConnection,
  type SendFileOptions,
  type SendFileResult,
  sendFileResumable,
} from './files-send.js';
import { FileInbox } from './files-store.js';
import {
  DEFAULT_MAX_FILE_BYTES,
  FILE_PROTOCOL,
  MAX_FILE_RECORD_BYTES,
  type SignedFileOffer,
} from './files-wire.js';
import type { MessagingNode } from './messaging-types.js';
import { countHandshake } from './session-metrics.js';

const log = createLogger('mmogit:agent:files');

/** Bound on a file stream's PQ handshake, either side. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** What the file service needs. */
export interface FileServiceDeps {
  /** The node as the messenger sees it (`messagingNodeFromAgentNode`): dial and handle by onion. */
  node: MessagingNode;
  key: AgentKey;
  configDir: string;
  allowClassical: boolean;
  metrics?: AgentMetrics;
  /** The receiver's cap (default {@link DEFAULT_MAX_FILE_BYTES}). */
  maxFileBytes?: number;
  maxFutureSkewMs: number;
  maxAgeMs: number;
  now?: () => number;
  /** Lists a stored file's offer (the messenger's `storeVerified`). */
  list(offer: SignedFileOffer): Promise<unknown>;
  fail(err: MmogitError, peer?: string): void;
}

/** A file stored in `<config-dir>/files/`, as {@link FileService.received} lists it. */
export interface ReceivedFile {
  from: string;
  path: string;
}

/** The running file service of an agent. */
export interface FileService {
  readonly inbox: FileInbox;
  /** Sends the file at `path` (read by this process, never through IPC) to `peer` (an onion). */
  send(peer: string, path: string, options?: SendFileOptions): Promise<SendFileResult>;
  /** Every complete file stored, by sender. */
  received(): Promise<ReceivedFile[]>;
  stop(): Promise<void>;
}

/** Starts serving {@link FILE_PROTOCOL} and returns the sender side too. */
export async function startFileService(deps: FileServiceDeps): Promise<FileService> {
  const inbox = new FileInbox(deps.configDir);
  await inbox.init();
  const maxFileBytes = deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const stopper = new AbortController();
  const tasks = new Set<Promise<void>>();
  const receiver = new FileReceiver({
    key: deps.key,
    inbox,
    maxFileBytes,
    maxFutureSkewMs: deps.maxFutureSkewMs,
    maxAgeMs: deps.maxAgeMs,
    now: deps.now ?? Date.now,
    list: async (offer, path) => {
      await deps.list(offer);
      log('stored %s from %s at %s', offer.message.id, offer.message.from, path);
    },
    fail: deps.fail,
  });
  const options = { allowClassical: deps.allowClassical, maxPayload: MAX_FILE_RECORD_BYTES };
  await deps.node.handle(FILE_PROTOCOL, (channel, info) => {
    const task = (async () => {
      let release = () => {};
      try {
        const signal = AbortSignal.any([
          withTimeout(undefined, HANDSHAKE_TIMEOUT_MS, 'file handshake (responder)'),
          stopper.signal,
        ]);
        const counted = await countHandshake(deps.metrics, 'responder', () =>
          acceptSession(channel, deps.key, { ...options, signal, timeoutMs: HANDSHAKE_TIMEOUT_MS }),
        );
        release = counted.release;
        const session = counted.session;
        if (info.remoteOnion !== undefined && info.remoteOnion !== session.peer.onion) {
          throw new MmogitError('ERR_HANDSHAKE', 'file peer identity differs from the libp2p connection');
        }
        await receiver.serve(session, stopper.signal);
      } catch (e) {
        log('inbound file stream failed: %s', e instanceof Error ? e.message : String(e));
      } finally {
        release();
        channel.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'file transfer ended'));
      }
    })();
    tasks.add(task);
    void task.finally(() => tasks.delete(task));
  });
  const connect = async (peer: string, signal: AbortSignal): Promise<FileConnection> => {
    const { channel } = await deps.node.dial(peer, FILE_PROTOCOL, { signal });
    try {
      const counted = await countHandshake(deps.metrics, 'initiator', () =>
        initiateSession(channel, deps.key, {
          ...options,
          expectedPeer: peer,
          signal,
          timeoutMs: HANDSHAKE_TIMEOUT_MS,
        }),
      );
      const session: FileSession = counted.session;
      return {
        session,
        abort: (err) => {
          counted.release();
          channel.abort(err);
        },
      };
    } catch (e) {
      channel.abort(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
  };
  return {
    inbox,
    async send(peer, path, opts = {}) {
      const to = parseOnionAddress(peer).hostname;
      if (to === deps.key.onion) throw new MmogitError('ERR_INVALID_ARGUMENT', 'cannot send a file to self');
      const signal = opts.signal ? AbortSignal.any([opts.signal, stopper.signal]) : stopper.signal;
      return sendFileResumable(deps.key, to, path, (s) => connect(to, s), {
        maxFileBytes,
        ...opts,
        signal,
      });
    },
    async received() {
      const out: ReceivedFile[] = [];
      for (const d of await readdir(inbox.dir, { withFileTypes: true })) {
        if (!d.isDirectory() || d.name.startsWith('.')) continue;
        for (const f of await readdir(join(inbox.dir, d.name))) {
          out.push({ from: `${d.name}.onion`, path: join(inbox.dir, d.name, f) });
        }
      }
      return out;
    },
    async stop() {
      stopper.abort(new MmogitError('ERR_ABORTED', 'file service stopped'));
      await Promise.resolve(deps.node.unhandle?.(FILE_PROTOCOL)).catch(() => {});
      await Promise.allSettled([...tasks]);
    },
  };
}
