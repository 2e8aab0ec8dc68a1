/**
 * The sender's file transfers as an outbox: a file's signed offer is made durable in the {@link FileOutbox}
 * before a byte is sent, so a transfer cut by a drop, an offline peer or a killed daemon is resumed later under
 * the same offer id from the offset the receiver holds — never restarted under a new id (which would leave the
 * receiver a partial it can never complete). Retries follow the message outbox's backoff (capped exponential
 * with jitter, messaging-send.ts). Before any resumption the file is checked against the offer: size, then
 * mtime, and when the mtime moved or the entry was loaded after a restart, its SHA-256 again; a changed file
 * fails the entry (`ERR_FILE_CHANGED`, kept and listed) instead of sending the receiver bytes of another file.
 * docs/protocol.md §9.4.
 * @module
 */
import { stat } from 'node:fs/promises';
import { backoffDelay } from '../_async.js';
import { createLogger } from '../_log.js';
import { MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { asMmogitError } from './_errors.js';
import type { FileOutbox, FileOutboxEntry } from './file-outbox.js';
import {
  DEFAULT_FILE_TIMEOUT_MS,
  type FileConnection,
  type FileProgress,
  hashFile,
  isRetryableFileError,
  type LocalFile,
  type TransferResult,
  transferOffer,
} from './files-send.js';
import { signFileOffer } from './files-wire.js';
import { DEFAULT_INITIAL_RETRY_DELAY_MS, DEFAULT_MAX_RETRY_DELAY_MS } from './messaging-send.js';
import type { PendingMessage } from './messaging-types.js';

const log = createLogger('mmogit:agent:files');

/** Bound on `retry`'s wait for the attempt it starts (the attempt itself runs on). */
const RETRY_WAIT_MS = 30_000;

/** A file entry as `mmogit outbox list` shows it: a pending message of type `file`, plus the file's state. */
export interface PendingFile extends PendingMessage {
  type: 'file';
  file: {
    name: string;
    size: number;
    sha256: string;
    path: string;
    state: 'pending' | 'failed';
    /** The offset the receiver last said it holds durably (0 before any answer in this process). */
    offset: number;
  };
}

/** What `outbox retry` of a file entry answers. */
export interface FileRetryResult {
  id: string;
  status: 'delivered' | 'queued' | 'failed' | 'sending';
  error?: { code: string; message: string };
}

/** How an attempt ended. */
export type FileAttemptOutcome =
  | ({ status: 'delivered' } & TransferResult)
  | { status: 'queued' | 'failed'; error: MmogitError; attempts: number; resumedFrom: number[] };

/** What the {@link FileQueue} needs. */
export interface FileQueueDeps {
  outbox: FileOutbox;
  key: AgentKey;
  connect(peer: string, signal: AbortSignal): Promise<FileConnection>;
  /** Backoff between background attempts (defaults: the message outbox's). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  now(): number;
  /** Fires when the service stops: attempts end, entries stay. */
  stopSignal: AbortSignal;
  /** `file-delivered`, `file-resumed`, `file-queued`, `file-failed`, with a one-line detail (the daemon log). */
  event(kind: string, detail: string): void;
}

interface Entry {
  e: FileOutboxEntry;
  attempts: number;
  nextAt: number;
  /** The file was hashed by this process and matched the offer (a loaded entry is hashed again first). */
  verified: boolean;
  offset: number;
  lastError?: MmogitError;
  /** Aborts the attempt in flight (a drop). */
  stop?: AbortController;
}

/** Options of one attempt. */
interface AttemptOptions {
  signal: AbortSignal;
  attempts: number;
  onProgress?: (event: FileProgress) => void;
}

/** The pending and failed file transfers, their retry timer and the attempts in flight. */
export class FileQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<FileAttemptOutcome>>();
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: FileQueueDeps) {
    this.initialDelayMs = deps.retry?.initialDelayMs ?? DEFAULT_INITIAL_RETRY_DELAY_MS;
    this.maxDelayMs = deps.retry?.maxDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
  }

  /** Loads the outbox: pending entries are due at once (each hashed again first), failed ones wait for a retry. */
  async load(): Promise<void> {
    const { entries, corrupt } = await this.deps.outbox.list();
    for (const name of corrupt)
      this.deps.event('file-error', `file outbox entry ${name} is corrupt: set aside`);
    const now = this.deps.now();
    for (const e of entries) {
      this.entries.set(e.offer.message.id, {
        e,
        attempts: 0,
        nextAt: e.state === 'pending' ? now : Number.POSITIVE_INFINITY,
        verified: false,
        offset: 0,
      });
    }
    this.schedule();
  }

  /**
   * The entry for `file` (hashed: `sha256`) to `to`, made durable before this resolves: a pending entry for the
   * same peer, size and sha256 is reused (its path and mtime updated), else a new offer is signed.
   */
  enqueue(
    to: string,
    file: LocalFile,
    name: string,
    sha256: string,
  ): Promise<{ id: string; reused: boolean }> {
    // One at a time: two sends of the same content at once must not both sign an offer.
    const run = this.lock.then(async () => {
      for (const q of this.entries.values()) {
        const b = q.e.offer.message.body;
        if (
          q.e.state !== 'pending' ||
          q.e.offer.message.to !== to ||
          b.size !== file.size ||
          b.sha256 !== sha256
        )
          continue;
        if (q.e.path !== file.path || q.e.mtimeMs !== file.mtimeMs) {
          q.e = { ...q.e, path: file.path, mtimeMs: file.mtimeMs };
          await this.deps.outbox.put(q.e);
        }
        q.verified = true;
        return { id: q.e.offer.message.id, reused: true };
      }
      const offer = signFileOffer(this.deps.key, to, { name, size: file.size, sha256 });
      const e: FileOutboxEntry = {
        offer,
        path: file.path,
        mtimeMs: file.mtimeMs,
        queuedAt: this.deps.now(),
        state: 'pending',
      };
      await this.deps.outbox.put(e);
      this.entries.set(offer.message.id, {
        e,
        attempts: 0,
        nextAt: Number.POSITIVE_INFINITY,
        verified: true,
        offset: 0,
      });
      return { id: offer.message.id, reused: false };
    });
    this.lock = run.catch(() => {});
    return run;
  }

  /** The entry of `id` as stored, or undefined. */
  get(id: string): FileOutboxEntry | undefined {
    return this.entries.get(id)?.e;
  }

  /** True while `id` is in the file outbox (pending or failed). */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Runs an attempt of `id` now (or joins the one running); never throws. */
  run(id: string, options: AttemptOptions): Promise<FileAttemptOutcome> {
    return this.attempt(id, options);
  }

  /** Starts `id`'s first background attempt now (a `background` send). */
  kick(id: string): void {
    const q = this.entries.get(id);
    if (!q || this.inflight.has(id)) return;
    q.nextAt = this.deps.now();
    this.schedule();
  }

  /** Every entry, oldest first, as `outbox list` shows it. */
  pending(): PendingFile[] {
    return [...this.entries.values()].map((q) => {
      const m = q.e.offer.message;
      return {
        id: m.id,
        to: m.to,
        attempts: q.attempts,
        nextAttemptAt: q.nextAt,
        queuedAt: q.e.queuedAt,
        type: 'file' as const,
        preview: `${m.body.name.slice(0, 60)} (${m.body.size} bytes)`,
        ...(q.lastError
          ? { lastError: { code: q.lastError.code, message: q.lastError.message } }
          : q.e.error
            ? { lastError: q.e.error }
            : {}),
        file: {
          name: m.body.name,
          size: m.body.size,
          sha256: m.body.sha256,
          path: q.e.path,
          state: q.e.state,
          offset: q.offset,
        },
      };
    });
  }

  /**
   * Attempts `id` now (a failed entry becomes pending again and its file is hashed again): `delivered`,
   * `queued` or `failed` with the error, or `sending` when the transfer is still running after
   * {@link RETRY_WAIT_MS} (it goes on). `ERR_NOT_FOUND` when no such entry exists.
   */
  async retry(
    id: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<FileRetryResult> {
    const q = this.entries.get(id);
    if (!q) throw new MmogitError('ERR_NOT_FOUND', `no queued file ${id}`, { details: { id } });
    if (q.e.state === 'failed') {
      const { error: _old, ...rest } = q.e;
      q.e = { ...rest, state: 'pending' };
      q.verified = false;
      await this.deps.outbox.put(q.e);
    }
    const running = this.attempt(id, {
      signal: AbortSignal.timeout(DEFAULT_FILE_TIMEOUT_MS),
      attempts: 1,
    });
    const wait = withTimeout(options.signal, options.timeoutMs ?? RETRY_WAIT_MS, `retry ${id}`);
    const out = await new Promise<FileAttemptOutcome | null>((resolve) => {
      const onAbort = () => resolve(null);
      wait.addEventListener('abort', onAbort, { once: true });
      void running.then((r) => {
        wait.removeEventListener('abort', onAbort);
        resolve(r);
      });
    });
    if (out === null) return { id, status: 'sending' };
    if (out.status === 'delivered') return { id, status: 'delivered' };
    return { id, status: out.status, error: { code: out.error.code, message: out.error.message } };
  }

  /** Gives up on `id`: out of the outbox, an attempt in flight aborted. `ERR_NOT_FOUND` when there is none. */
  async drop(id: string): Promise<{ id: string; to: string }> {
    const q = this.entries.get(id);
    if (!q) throw new MmogitError('ERR_NOT_FOUND', `no queued file ${id}`, { details: { id } });
    this.entries.delete(id);
    q.stop?.abort(new MmogitError('ERR_ABORTED', `file ${id} dropped from the outbox`));
    await this.deps.outbox.remove(id);
    log('file %s to %s dropped from the outbox', id, q.e.offer.message.to);
    this.schedule();
    return { id, to: q.e.offer.message.to };
  }

  /** Whatever pending waits goes out now instead of at its backoff time (our tor came back). */
  expedite(): void {
    const now = this.deps.now();
    for (const [id, q] of this.entries) if (q.e.state === 'pending' && !this.inflight.has(id)) q.nextAt = now;
    this.schedule();
  }

  /** Stops the retry timer (attempts in flight end with the stop signal). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Attempts in flight (the service waits for them when it stops). */
  running(): Promise<unknown>[] {
    return [...this.inflight.values()];
  }

  private attempt(id: string, options: AttemptOptions): Promise<FileAttemptOutcome> {
    const running = this.inflight.get(id);
    if (running) return running;
    const q = this.entries.get(id);
    if (!q) {
      const error = new MmogitError('ERR_NOT_FOUND', `no queued file ${id}`, { details: { id } });
      return Promise.resolve({ status: 'failed', error, attempts: 0, resumedFrom: [] });
    }
    const stop = new AbortController();
    q.stop = stop;
    q.nextAt = Number.POSITIVE_INFINITY;
    const signal = AbortSignal.any([options.signal, stop.signal, this.deps.stopSignal]);
    const p = (async (): Promise<FileAttemptOutcome> => {
      let used = 0;
      try {
        const file = await this.checkFile(q, signal);
        const { offer } = q.e;
        const r = await transferOffer(offer, file, (s) => this.deps.connect(offer.message.to, s), {
          signal,
          attempts: options.attempts,
          ...(options.onProgress ? { onProgress: this.track(q, options.onProgress) } : {}),
          onAccept: (offset, n) => {
            used = n;
            q.offset = offset;
            // A new transfer is accepted at 0: anything else resumes bytes the receiver kept.
            if (offset > 0)
              this.deps.event('file-resumed', `${offer.message.id} to ${offer.message.to} from ${offset}`);
          },
        });
        if (this.entries.get(id) === q) this.entries.delete(id);
        await this.deps.outbox.remove(id);
        this.deps.event(
          'file-delivered',
          `${id} to ${offer.message.to}, ${offer.message.body.size} bytes, sha256 ${offer.message.body.sha256}`,
        );
        return { status: 'delivered', ...r };
      } catch (e) {
        const error = asMmogitError(e);
        q.lastError = error;
        q.attempts += 1;
        if (this.entries.get(id) !== q) return { status: 'failed', error, attempts: used, resumedFrom: [] };
        if (isRetryableFileError(error)) {
          const wait = backoffDelay(
            {
              attempts: Number.POSITIVE_INFINITY,
              baseDelayMs: this.initialDelayMs,
              maxDelayMs: this.maxDelayMs,
            },
            q.attempts,
            0.5 + Math.random() * 0.5,
          );
          q.nextAt = this.deps.now() + wait;
          this.deps.event(
            'file-queued',
            `${id} to ${q.e.offer.message.to}: ${error.code}; retry in ${wait} ms`,
          );
          return { status: 'queued', error, attempts: used, resumedFrom: [] };
        }
        q.e = { ...q.e, state: 'failed', error: { code: error.code, message: error.message } };
        await this.deps.outbox.put(q.e).catch((w: unknown) => log('file outbox write: %s', String(w)));
        this.deps.event('file-failed', `${id} to ${q.e.offer.message.to}: ${error.code} ${error.message}`);
        return { status: 'failed', error, attempts: used, resumedFrom: [] };
      } finally {
        q.stop = undefined;
        this.inflight.delete(id);
        this.schedule();
      }
    })();
    this.inflight.set(id, p);
    return p;
  }

  /** Keeps the listed offset current from the progress events, then passes them on. */
  private track(q: Entry, onProgress: (e: FileProgress) => void): (e: FileProgress) => void {
    return (e) => {
      if (e.phase === 'send') q.offset = e.bytes;
      onProgress(e);
    };
  }

  /**
   * The entry's file as it must be to resume: the offer's size, and — when its mtime moved or this process has
   * not hashed it yet — the offer's SHA-256. A new mtime with the same content is recorded.
   * @throws `ERR_FILE_UNREADABLE`, `ERR_FILE_CHANGED` (details: path, id).
   */
  private async checkFile(q: Entry, signal: AbortSignal): Promise<LocalFile> {
    const { path, offer } = q.e;
    const { id, body } = offer.message;
    const st = await stat(path).catch((e: unknown) => {
      throw new MmogitError('ERR_FILE_UNREADABLE', `${path} (file ${id}) cannot be read any more`, {
        cause: e,
        details: { path, id, reason: 'missing' },
      });
    });
    const changed = (why: string) =>
      new MmogitError('ERR_FILE_CHANGED', `${path} changed since file ${id} was offered (${why})`, {
        details: { path, id },
      });
    if (!st.isFile() || st.size !== body.size) throw changed(`size ${st.size}, offered ${body.size}`);
    const file: LocalFile = { path, size: st.size, mtimeMs: st.mtimeMs };
    if (q.verified && st.mtimeMs === q.e.mtimeMs) return file;
    const sha256 = await hashFile(file, signal, () => {});
    if (sha256 !== body.sha256) throw changed('its sha256 differs');
    q.verified = true;
    if (st.mtimeMs !== q.e.mtimeMs) {
      q.e = { ...q.e, mtimeMs: st.mtimeMs };
      await this.deps.outbox.put(q.e);
    }
    return file;
  }

  private schedule(): void {
    if (this.deps.stopSignal.aborted) return;
    this.stop();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, q] of this.entries) if (!this.inflight.has(id) && q.nextAt < next) next = q.nextAt;
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.runDue(), Math.max(0, next - this.deps.now()));
    this.timer.unref?.();
  }

  private runDue(): void {
    this.timer = undefined;
    if (this.deps.stopSignal.aborted) return;
    const now = this.deps.now();
    for (const [id, q] of this.entries) {
      if (q.e.state === 'pending' && q.nextAt <= now && !this.inflight.has(id)) {
        void this.attempt(id, { signal: AbortSignal.timeout(DEFAULT_FILE_TIMEOUT_MS), attempts: 1 });
      }
    }
    this.schedule();
  }
}
