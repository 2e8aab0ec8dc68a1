/**
 * The receiving side of `/mmogit/file/1.0.0` (docs/protocol.md §9): checks the signed offer before a byte of
 * data is taken (sender, recipient, signature, time window, size cap), answers with the offset it holds
 * durably, writes the chunks, acknowledges every {@link FILE_ACK_EVERY_BYTES}, and at the end checks size and
 * SHA-256 before the file gets its final name and its entry in the inbox. Anything past the declared size, a
 * short end or a wrong hash discards the partial file.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { asMmogitError } from './_errors.js';
import type { FileInbox, PartialFile } from './files-store.js';
import {
  decodeFileRecord,
  encodeFileControl,
  FILE_ACK_EVERY_BYTES,
  type FileControlFrame,
  parseFileOffer,
  type SignedFileOffer,
  verifyFileOffer,
} from './files-wire.js';
import { signAck } from './messaging-envelope.js';

const log = createLogger('mmogit:agent:files');

/** A receive that sees nothing for this long ends the transfer (it can be resumed). */
export const FILE_IDLE_TIMEOUT_MS = 60_000;

/** The part of a PQ session (src/pqc `SecureSession`) the file protocol uses. */
export interface FileSession {
  readonly peer: { onion: string };
  send(payload: Uint8Array, options?: AbortOptions): Promise<void>;
  receive(options?: AbortOptions): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

/** What the {@link FileReceiver} needs. */
export interface FileReceiverDeps {
  key: AgentKey;
  inbox: FileInbox;
  /** Largest file accepted (the offer's declared size is checked before any data). */
  maxFileBytes: number;
  maxFutureSkewMs: number;
  maxAgeMs: number;
  now(): number;
  /** The file of `offer` is stored complete at `path`: list its offer in the inbox (idempotent). */
  list(offer: SignedFileOffer, path: string): Promise<void>;
  fail(err: MmogitError, peer?: string): void;
}

/** Serves inbound transfers; one at a time per (sender, id): a resumption takes over from a stale one. */
export class FileReceiver {
  private readonly active = new Map<string, { stop: AbortController; done: Promise<void> }>();

  constructor(private readonly deps: FileReceiverDeps) {}

  /** Runs one inbound transfer on `session` (authenticated as `session.peer`). Never throws. */
  async serve(session: FileSession, signal?: AbortSignal): Promise<void> {
    const peer = session.peer.onion;
    let offer: SignedFileOffer;
    try {
      offer = await this.readOffer(session, signal);
    } catch (e) {
      await this.refuse(session, asMmogitError(e));
      return;
    }
    const key = `${offer.message.from}/${offer.message.id}`;
    const previous = this.active.get(key);
    if (previous) {
      // The sender reconnected while we still wait on the old stream: it is dead to the sender.
      previous.stop.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'superseded by a resumption'));
      await previous.done;
    }
    const stop = new AbortController();
    const run = this.receive(session, offer, signal ? AbortSignal.any([signal, stop.signal]) : stop.signal);
    const done = run.then(
      () => {},
      () => {},
    );
    this.active.set(key, { stop, done });
    try {
      await run;
    } catch (e) {
      const err = asMmogitError(e);
      log('file %s from %s: %s %s', offer.message.id, peer, err.code, err.message);
      if (err.category === 'security' || err.code === 'ERR_DISK_FULL') this.deps.fail(err, peer);
      await this.refuse(session, err);
    } finally {
      if (this.active.get(key)?.done === done) this.active.delete(key);
    }
  }

  /** The first record: a signed offer from the session's peer to us, in the time window, under the cap. */
  private async readOffer(session: FileSession, signal?: AbortSignal): Promise<SignedFileOffer> {
    const rec = await session.receive({ timeoutMs: FILE_IDLE_TIMEOUT_MS, ...(signal ? { signal } : {}) });
    if (rec === null) throw new MmogitError('ERR_CONNECTION_CLOSED', 'closed before the offer');
    const d = decodeFileRecord(rec);
    if (d.kind !== 'control' || d.frame.t !== 'offer') {
      throw new MmogitError('ERR_BAD_FRAME', 'a file transfer starts with an offer');
    }
    const offer = parseFileOffer(d.frame.m, d.frame.sig);
    const m = offer.message;
    const peer = session.peer.onion;
    if (m.from !== peer) {
      throw new MmogitError(
        'ERR_UNTRUSTED_DATA',
        `offer claims to be from ${m.from}, the session is with ${peer}`,
      );
    }
    if (m.to !== this.deps.key.onion)
      throw new MmogitError('ERR_UNTRUSTED_DATA', `offer is addressed to ${m.to}`);
    if (!verifyFileOffer(offer)) throw new MmogitError('ERR_BAD_SIGNATURE', `offer ${m.id} does not verify`);
    const now = this.deps.now();
    if (m.timestamp > now + this.deps.maxFutureSkewMs || m.timestamp < now - this.deps.maxAgeMs) {
      throw new MmogitError(
        'ERR_UNTRUSTED_DATA',
        `offer timestamp ${m.timestamp} is outside the accepted window`,
      );
    }
    if (m.body.size > this.deps.maxFileBytes) {
      throw new MmogitError(
        'ERR_FILE_TOO_LARGE',
        `file of ${m.body.size} bytes is over the receiver's limit of ${this.deps.maxFileBytes}`,
        { details: { bytes: m.body.size, limit: this.deps.maxFileBytes } },
      );
    }
    return offer;
  }

  private async receive(session: FileSession, offer: SignedFileOffer, signal: AbortSignal): Promise<void> {
    const inbox = this.deps.inbox;
    const size = offer.message.body.size;
    if (await inbox.has(offer)) {
      // Complete already (an earlier `stored` reply was lost): list it (again) and confirm.
      await this.deps.list(offer, inbox.finalPath(offer.message));
      return this.confirm(session, offer, signal);
    }
    const part = await inbox.open(offer);
    const send = (frame: FileControlFrame) => session.send(encodeFileControl(frame), { signal });
    const checkpoints = new BackgroundCheckpoints(part, (offset) => send({ t: 'ack', offset }));
    try {
      await send({ t: 'accept', offset: part.offset });
      for (;;) {
        const rec = await session.receive({ signal, timeoutMs: FILE_IDLE_TIMEOUT_MS });
        if (rec === null) throw new MmogitError('ERR_CONNECTION_CLOSED', 'sender closed before the end');
        const d = decodeFileRecord(rec);
        if (d.kind === 'data') {
          if (part.offset + d.chunk.length > size) {
            await checkpoints.settle();
            await part.discard();
            throw new MmogitError('ERR_FILE_OVERRUN', `sender sent past the declared size of ${size} bytes`, {
              details: { size, offset: part.offset + d.chunk.length },
            });
          }
          await part.write(d.chunk);
          checkpoints.maybeStart();
          continue;
        }
        await checkpoints.settle();
        if (d.frame.t !== 'end') throw new MmogitError('ERR_BAD_FRAME', `unexpected ${d.frame.t} frame`);
        if (part.offset !== size) {
          await part.discard();
          throw new MmogitError('ERR_FILE_OVERRUN', `sender ended at ${part.offset} of ${size} bytes`, {
            details: { size, offset: part.offset },
          });
        }
        const path = await part.finish(); // ERR_FILE_HASH_MISMATCH discards it
        await this.deps.list(offer, path);
        return this.confirm(session, offer, signal);
      }
    } catch (e) {
      // A dropped or timed-out stream: keep what arrived, durably, for a resumption.
      await checkpoints.settle().catch(() => {});
      await checkpointQuietly(part);
      throw e;
    } finally {
      await part.close();
    }
  }

  /** Sends the signed ack of the offer's id: the file is complete, verified and listed. */
  private async confirm(session: FileSession, offer: SignedFileOffer, signal: AbortSignal): Promise<void> {
    const ack = signAck(this.deps.key, offer.message.id, this.deps.now());
    await session.send(encodeFileControl({ t: 'stored', a: ack.ack, sig: ack.sig }), { signal });
    await session.close().catch(() => {});
  }

  /** Tells the sender why (best effort, bounded) and ends the session. */
  private async refuse(session: FileSession, err: MmogitError): Promise<void> {
    await session
      .send(encodeFileControl({ t: 'err', code: err.code, message: err.message }), { timeoutMs: 2_000 })
      .catch(() => {});
    await session.close().catch(() => {});
  }
}

/**
 * The receiver's checkpoints (fsync of the part file, then its durable offset) run beside the receive loop, one
 * at a time, instead of stopping it: a checkpoint of 1 MiB took the loop off the stream for several fsyncs, which
 * left tor's buffers full and the sender's window waiting. Its ack goes out when the checkpoint is durable, so
 * an acknowledged offset still means "on disk" (§9). The writes it covers all finished before it started.
 * A failed checkpoint (a full disk) is raised by the next `maybeStart` or `settle`.
 */
class BackgroundCheckpoints {
  #acked: number;
  #running: Promise<void> | null = null;
  #failure: unknown = null;

  constructor(
    private readonly part: PartialFile,
    private readonly ack: (offset: number) => Promise<void>,
  ) {
    this.#acked = part.offset;
  }

  /** Starts a checkpoint when the last one is done and {@link FILE_ACK_EVERY_BYTES} more have arrived. */
  maybeStart(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#running || this.part.offset - this.#acked < FILE_ACK_EVERY_BYTES) return;
    const run = this.part
      .checkpoint()
      .then(async (offset) => {
        this.#acked = offset;
        await this.ack(offset);
      })
      .catch((e: unknown) => {
        this.#failure ??= e;
      })
      .finally(() => {
        if (this.#running === run) this.#running = null;
      });
    this.#running = run;
  }

  /** Waits for the checkpoint in flight; throws its failure, if any. */
  async settle(): Promise<void> {
    await this.#running;
    if (this.#failure !== null) throw this.#failure;
  }
}

async function checkpointQuietly(part: PartialFile): Promise<void> {
  try {
    await part.checkpoint();
  } catch {
    // discarded already, or the disk failed: a resumption then starts from the last good checkpoint.
  }
}
