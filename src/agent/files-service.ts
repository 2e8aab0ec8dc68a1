/**
 * File transfer as a protocol of the agent's node: each transfer is its own stream (`/mmogit/file/1.0.0`)
 * with its own hybrid PQ session (src/pqc), so a 50 MB file never queues the messaging link's small frames
 * behind it, and dropping one transfer's stream leaves messaging alone. The receiving side lists a stored
 * file's signed offer through the messenger (`Messenger.storeVerified`), so it shows in the inbox, in
 * `messages()` and to hooks like any message.
 * @module
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createLogger } from '../_log.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { parseOnionAddress } from '../identity/onion.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import { acceptSession, initiateSession } from '../pqc/handshake.js';
import { FileOutbox } from './file-outbox.js';
import { type FileAttemptOutcome, FileQueue, type FileRetryResult, type PendingFile } from './file-queue.js';
import { FileReceiver, type FileSession } from './files-receive.js';
import {
  DEFAULT_FILE_ATTEMPTS,
  DEFAULT_FILE_TIMEOUT_MS,
  type FileConnection,
  hashFile,
  inspectFile,
  type SendFileOptions,
  type SendFileResult,
} from './files-send.js';
import { DEFAULT_PARTIAL_MAX_AGE_MS, FileInbox } from './files-store.js';
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
/** How often old partial transfers are looked for (besides at start). */
const SWEEP_EVERY_MS = 3_600_000;

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
  /** A partial transfer untouched this long is removed (default {@link DEFAULT_PARTIAL_MAX_AGE_MS}). */
  partialMaxAgeMs?: number;
  /** Backoff of the file outbox's retries (defaults: the message outbox's). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Lists a stored file's offer (the messenger's `storeVerified`). */
  list(offer: SignedFileOffer): Promise<unknown>;
  fail(err: MmogitError, peer?: string): void;
  /** What the file outbox did (`file-delivered`, `file-resumed`, `file-queued`, `file-failed`), for the log. */
  event?(kind: string, detail: string): void;
}

/** A file stored in `<config-dir>/files/`, as {@link FileService.received} lists it. */
export interface ReceivedFile {
  from: string;
  path: string;
}

/** The running file service of an agent. */
export interface FileService {
  readonly inbox: FileInbox;
  /**
   * Sends the file at `path` (read by this process, never through IPC) to `peer` (an onion): hashed, its signed
   * offer made durable in the file outbox, then streamed. `delivered`, or `queued` when this call's connections
   * or time ran out (the service resumes it under the same id). A pending entry for the same peer and content
   * is reused. Final errors (a cap, a changed file) reject, and leave the entry `failed` once it exists.
   */
  send(peer: string, path: string, options?: SendFileOptions): Promise<SendFileResult>;
  /** The file outbox (pending and failed), oldest first. */
  pending(): PendingFile[];
  /** True when `id` is in the file outbox. */
  has(id: string): boolean;
  retry(id: string, options?: { signal?: AbortSignal }): Promise<FileRetryResult>;
  drop(id: string): Promise<{ id: string; to: string }>;
  /** Every pending entry now (our tor came back). */
  retryNow(): void;
  /** Every complete file stored, by sender. */
  received(): Promise<ReceivedFile[]>;
  stop(): Promise<void>;
}

/** Starts serving {@link FILE_PROTOCOL} and returns the sender side too. */
export async function startFileService(deps: FileServiceDeps): Promise<FileService> {
  const inbox = new FileInbox(deps.configDir);
  await inbox.init();
  const now = deps.now ?? Date.now;
  const event = deps.event ?? ((kind: string, detail: string) => log('%s %s', kind, detail));
  const partialMaxAgeMs = deps.partialMaxAgeMs ?? DEFAULT_PARTIAL_MAX_AGE_MS;
  const sweep = async () => {
    try {
      for (const base of await inbox.sweep(partialMaxAgeMs, now()))
        event('file-partial-expired', `${base}: no byte for ${Math.round(partialMaxAgeMs / 3_600_000)} h`);
    } catch (e) {
      log('partial sweep failed: %s', e instanceof Error ? e.message : String(e));
    }
  };
  await sweep();
  const sweeper = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  sweeper.unref?.();
  const maxFileBytes = deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const stopper = new AbortController();
  const tasks = new Set<Promise<void>>();
  const receiver = new FileReceiver({
    key: deps.key,
    inbox,
    maxFileBytes,
    maxFutureSkewMs: deps.maxFutureSkewMs,
    maxAgeMs: deps.maxAgeMs,
    now,
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
  const outbox = new FileOutbox(deps.configDir);
  await outbox.init();
  const queue = new FileQueue({
    outbox,
    key: deps.key,
    connect,
    ...(deps.retry ? { retry: deps.retry } : {}),
    now,
    stopSignal: stopper.signal,
    event,
  });
  await queue.load();
  return {
    inbox,
    async send(peer, path, opts = {}) {
      const t0 = performance.now();
      const to = parseOnionAddress(peer).hostname;
      if (to === deps.key.onion) throw new MmogitError('ERR_INVALID_ARGUMENT', 'cannot send a file to self');
      const file = await inspectFile(path, opts.maxFileBytes ?? maxFileBytes);
      const signal = withTimeout(
        opts.signal ? AbortSignal.any([opts.signal, stopper.signal]) : stopper.signal,
        opts.timeoutMs ?? DEFAULT_FILE_TIMEOUT_MS,
        `sending ${path}`,
      );
      const progress = opts.onProgress ?? (() => {});
      const sha256 = await hashFile(file, signal, (bytes) =>
        progress({ phase: 'hash', bytes, size: file.size, attempt: 0 }),
      );
      const name = basename(path);
      const { id, reused } = await queue.enqueue(to, file, name, sha256);
      const offer = queue.get(id)?.offer.message;
      const base = { id, to, name: offer?.body.name ?? name, size: file.size, sha256, reused };
      const ms = () => Math.round(performance.now() - t0);
      if (opts.background) {
        queue.kick(id);
        return { ...base, status: 'queued', attempts: 0, resumedFrom: [], ms: ms() };
      }
      const out: FileAttemptOutcome = await queue.run(id, {
        signal,
        attempts: opts.attempts ?? DEFAULT_FILE_ATTEMPTS,
        onProgress: progress,
      });
      if (out.status === 'delivered') {
        const { ack, attempts, resumedFrom } = out;
        return { ...base, status: 'delivered', attempts, resumedFrom, ms: ms(), ack };
      }
      const err = out.error;
      if (out.status === 'failed') {
        throw new MmogitError(err.code, err.message, {
          cause: err,
          details: { ...err.details, id, status: 'failed' },
        });
      }
      // The caller went away: its abort is its answer, the transfer stays queued.
      if (opts.signal?.aborted) {
        const why = abortReason(opts.signal, `sending ${path}`);
        throw new MmogitError(why.code, `${why.message} (file ${id} stays queued)`, {
          cause: why,
          details: { id, status: 'queued' },
        });
      }
      const error = { code: err.code, message: err.message };
      return { ...base, status: 'queued', attempts: out.attempts, resumedFrom: [], ms: ms(), error };
    },
    pending: () => queue.pending(),
    has: (id) => queue.has(id),
    retry: (id, opts = {}) => queue.retry(id, opts),
    drop: (id) => queue.drop(id),
    retryNow: () => queue.expedite(),
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
      clearInterval(sweeper);
      stopper.abort(new MmogitError('ERR_ABORTED', 'file service stopped'));
      queue.stop();
      await Promise.resolve(deps.node.unhandle?.(FILE_PROTOCOL)).catch(() => {});
      await Promise.allSettled([...tasks, ...queue.running()]);
    },
  };
}
