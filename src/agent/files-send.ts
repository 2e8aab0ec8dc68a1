/**
 * The sending side of `/mmogit/file/1.0.0` (docs/protocol.md §9): checks the file (a readable regular file
 * under the cap) and hashes it; given the signed offer (kept in the file outbox, file-queue.ts), streams it in
 * chunks read from disk — at most
 * {@link FILE_WINDOW_BYTES} unacknowledged, so memory stays bounded whatever the size — and, when the
 * connection drops, reconnects and resumes from the offset the receiver says it holds.
 * @module
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { retry } from '../_async.js';
import { abortReason, MmogitError } from '../errors.js';
import { asMmogitError, remoteError } from './_errors.js';
import type { FileSession } from './files-receive.js';
import {
  DEFAULT_MAX_FILE_BYTES,
  decodeFileRecord,
  encodeFileControl,
  FILE_CHUNK_BYTES,
  FILE_DATA_TAG,
  FILE_WINDOW_BYTES,
  type SignedFileOffer,
} from './files-wire.js';
import { type SignedAck, verifyAck } from './messaging-envelope.js';

/** Default bound on a whole transfer, resumptions included. */
export const DEFAULT_FILE_TIMEOUT_MS = 60 * 60_000;
/** Default number of connections a transfer may use (the first included) before it gives up. */
export const DEFAULT_FILE_ATTEMPTS = 8;
/** Bound on waiting for the receiver's answer to an offer, and for any acknowledgement after it. */
const REPLY_TIMEOUT_MS = 60_000;
const HASH_READ_BYTES = 1024 * 1024;

/** A transfer's progress, for `onProgress` (the CLI prints it on stderr). */
export interface FileProgress {
  phase: 'hash' | 'send' | 'resume' | 'stored';
  /** Bytes hashed (`hash`), acknowledged by the receiver (`send`, `stored`) or resumed from (`resume`). */
  bytes: number;
  size: number;
  /** The connection in use (1 for the first). */
  attempt: number;
}

/** Options of `agent.sendFile`. */
export interface SendFileOptions {
  signal?: AbortSignal;
  /** Bound on the whole transfer (default {@link DEFAULT_FILE_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** The sender's cap (default {@link DEFAULT_MAX_FILE_BYTES}); a bigger file is refused before anything is sent. */
  maxFileBytes?: number;
  /** Connections to try (default {@link DEFAULT_FILE_ATTEMPTS}). */
  attempts?: number;
  onProgress?: (event: FileProgress) => void;
  /** Answer `queued` as soon as the offer is durable in the file outbox; the service sends it (default false). */
  background?: boolean;
}

/**
 * The outcome of `sendFile`: `delivered` (the receiver's signed ack is in `ack`), or `queued` (the offer is in the
 * file outbox and the daemon keeps resuming it under the same id; `error` says why this call did not finish).
 */
export interface SendFileResult {
  id: string;
  to: string;
  name: string;
  size: number;
  sha256: string;
  status: 'delivered' | 'queued';
  /** Connections this call used (1 when nothing dropped; 0 for `background`). */
  attempts: number;
  /** The offset each resumption of this call started from. */
  resumedFrom: number[];
  ms: number;
  /** True when the offer was already pending in the outbox (same peer, size and sha256) and was reused. */
  reused: boolean;
  ack?: SignedAck;
  error?: { code: string; message: string };
}

/** A connection for one attempt: the PQ session and how to drop it. */
export interface FileConnection {
  session: FileSession;
  abort(err: Error): void;
}

/** A file as it was checked: its size and mtime tell whether it changed since. */
export interface LocalFile {
  path: string;
  size: number;
  mtimeMs: number;
}

function unreadable(
  path: string,
  reason: 'missing' | 'directory' | 'unreadable',
  cause?: unknown,
): MmogitError {
  const why = {
    missing: 'does not exist',
    directory: 'is a directory',
    unreadable: 'is not a readable file',
  };
  return new MmogitError('ERR_FILE_UNREADABLE', `${path} ${why[reason]}`, {
    ...(cause ? { cause } : {}),
    details: { path, reason },
  });
}

/**
 * Checks that `path` is a readable regular file of at most `maxFileBytes`.
 * @throws `ERR_FILE_UNREADABLE` (`details.reason`: `missing`, `directory`, `unreadable`), `ERR_FILE_TOO_LARGE`.
 */
export async function inspectFile(path: string, maxFileBytes = DEFAULT_MAX_FILE_BYTES): Promise<LocalFile> {
  const st = await stat(path).catch((e: unknown) => {
    throw unreadable(path, (e as { code?: string }).code === 'ENOENT' ? 'missing' : 'unreadable', e);
  });
  if (st.isDirectory()) throw unreadable(path, 'directory');
  if (!st.isFile()) throw unreadable(path, 'unreadable');
  if (st.size > maxFileBytes) {
    throw new MmogitError('ERR_FILE_TOO_LARGE', `${path} is ${st.size} bytes, the limit is ${maxFileBytes}`, {
      details: { bytes: st.size, limit: maxFileBytes },
    });
  }
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw unreadable(path, 'unreadable', e);
  });
  await fh.close();
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

/** Opens `file` for reading and checks it is still the file that was hashed (size and mtime). */
async function reopen(file: LocalFile): Promise<FileHandle> {
  const fh = await open(file.path, 'r').catch((e: unknown) => {
    throw unreadable(file.path, 'unreadable', e);
  });
  const st = await fh.stat();
  if (st.size !== file.size || st.mtimeMs !== file.mtimeMs) {
    await fh.close();
    throw new MmogitError('ERR_FILE_CHANGED', `${file.path} changed while it was being sent`, {
      details: { path: file.path },
    });
  }
  return fh;
}

/** The SHA-256 (hex) of `file`, read in 1 MiB blocks; `ERR_FILE_CHANGED` when its size or mtime moved. */
export async function hashFile(
  file: LocalFile,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<string> {
  const fh = await reopen(file);
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_READ_BYTES);
    let at = 0;
    while (at < file.size) {
      if (signal.aborted) throw abortReason(signal, 'hashing the file');
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, file.size - at), at);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
      onBytes(at);
    }
    if (at !== file.size)
      throw new MmogitError('ERR_FILE_CHANGED', `${file.path} shrank while it was hashed`);
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** What {@link transferOffer} did: the receiver's signed ack, the connections used, where each resumption began. */
export interface TransferResult {
  ack: SignedAck;
  attempts: number;
  /** The offset each connection after the first started from. */
  resumedFrom: number[];
}

/** Options of {@link transferOffer}. */
export interface TransferOptions {
  signal: AbortSignal;
  /** Connections to try (the first included). */
  attempts: number;
  onProgress?: (event: FileProgress) => void;
  /** Every `accept`: the offset the receiver holds durably, and which connection of this call it came on. */
  onAccept?: (offset: number, attempt: number) => void;
}

/**
 * Sends `file` under the signed `offer` (the same offer, so the same id, on every connection and every call)
 * over connections from `connect`, resuming after a drop from the offset the receiver answers with. Resolves
 * once the receiver's signed ack says the file is stored, verified and listed.
 *
 * @throws `ERR_FILE_UNREADABLE`, `ERR_FILE_TOO_LARGE` (the receiver's cap), `ERR_FILE_CHANGED`,
 *   `ERR_FILE_HASH_MISMATCH` (the receiver discarded it), a network error once the attempts are used up,
 *   `ERR_TIMEOUT` / `ERR_ABORTED`.
 */
export async function transferOffer(
  offer: SignedFileOffer,
  file: LocalFile,
  connect: (signal: AbortSignal) => Promise<FileConnection>,
  options: TransferOptions,
): Promise<TransferResult> {
  const { signal } = options;
  const progress = options.onProgress ?? (() => {});
  const resumedFrom: number[] = [];
  let used = 0;
  const ack = await retry(
    async (attempt, sig) => {
      used = attempt;
      const conn = await connect(sig);
      try {
        return await sendOnce(conn.session, offer, file, sig, attempt, progress, (offset) => {
          if (attempt > 1) resumedFrom.push(offset);
          options.onAccept?.(offset, attempt);
        });
      } catch (e) {
        const err = asMmogitError(e);
        conn.abort(err);
        throw err;
      }
    },
    { attempts: options.attempts, baseDelayMs: 500, maxDelayMs: 8_000 },
    {
      signal,
      what: `sending ${file.path}`,
      // Only a broken path is worth another connection; a refusal (cap, hash, changed file) is final.
      retryable: (e) => isRetryableFileError(asMmogitError(e)) && !signal.aborted,
    },
  );
  return { ack, attempts: used, resumedFrom };
}

/**
 * True when a failed transfer is worth another attempt: anything but a verdict that will not change — a usage
 * error (a cap, a changed or unreadable file), a security one (a hash the receiver refused, an offer it finds
 * too old or forged, a bad frame) or a peer that does not speak the protocol. A broken path, our own abort or
 * stop, a receiver short of room or of transfer slots, and errors we cannot classify are retried (as the
 * message outbox retries everything but a final refusal).
 */
export function isRetryableFileError(err: MmogitError): boolean {
  if (err.code === 'ERR_PEER_UNSUPPORTED') return false;
  return err.category !== 'usage' && err.category !== 'security' && err.category !== 'not-found';
}

/** One attempt over one session: offer, stream from the receiver's offset, end, wait for `stored`. */
async function sendOnce(
  session: FileSession,
  offer: SignedFileOffer,
  file: LocalFile,
  signal: AbortSignal,
  attempt: number,
  progress: (e: FileProgress) => void,
  onAccept: (offset: number) => void,
): Promise<SignedAck> {
  const size = file.size;
  const peer = offer.message.to;
  await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }), { signal });
  const first = await nextControl(session, signal, peer);
  if (first.t === 'stored') return checkStored(first, offer);
  if (first.t !== 'accept' || first.offset > size) {
    throw new MmogitError('ERR_BAD_FRAME', `${peer} answered the offer with a bad ${first.t} frame`);
  }
  onAccept(first.offset);
  if (attempt > 1) progress({ phase: 'resume', bytes: first.offset, size, attempt });
  let sent = first.offset;
  let acked = first.offset;
  let failure: unknown = null;
  // Set by the reader below; the assertion keeps TypeScript from narrowing it to `null` for good.
  let stored = null as SignedAck | null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const changed = () => new Promise<void>((r) => (wake = r));
  // The receiver's acks arrive while we write: read them alongside.
  const reader = (async () => {
    for (;;) {
      const f = await nextControl(session, signal, peer);
      if (f.t === 'ack' && f.offset <= sent && f.offset >= acked) {
        acked = f.offset;
        progress({ phase: 'send', bytes: acked, size, attempt });
      } else if (f.t === 'stored') {
        stored = checkStored(f, offer);
        notify();
        return;
      } else {
        throw new MmogitError('ERR_BAD_FRAME', `${peer} sent a bad ${f.t} frame during the transfer`);
      }
      notify();
    }
  })().catch((e: unknown) => {
    failure = e;
    notify();
  });
  const fh = await reopen(file);
  try {
    while (sent < size) {
      if (failure) throw failure;
      if (sent - acked >= FILE_WINDOW_BYTES) {
        await changed();
        continue;
      }
      const n = Math.min(FILE_CHUNK_BYTES, size - sent);
      // Read straight into the record after its tag byte: no second copy of the chunk.
      const record = Buffer.allocUnsafe(1 + n);
      record[0] = FILE_DATA_TAG;
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(record, 1 + got, n - got, sent + got);
        if (bytesRead === 0)
          throw new MmogitError('ERR_FILE_CHANGED', `${file.path} shrank while it was sent`);
        got += bytesRead;
      }
      await session.send(record, { signal });
      sent += n;
    }
  } finally {
    await fh.close();
  }
  await session.send(encodeFileControl({ t: 'end' }), { signal });
  while (!stored && !failure) await changed();
  await reader;
  if (failure) throw failure;
  if (!stored) throw new MmogitError('ERR_INTERNAL', 'file transfer ended without a stored ack');
  await session.close().catch(() => {});
  return stored;
}

/** The next control frame from the receiver; its `err` frame as a typed error. */
async function nextControl(session: FileSession, signal: AbortSignal, peer: string) {
  const rec = await session.receive({ signal, timeoutMs: REPLY_TIMEOUT_MS });
  if (rec === null) throw new MmogitError('ERR_CONNECTION_CLOSED', `${peer} closed the file transfer`);
  const d = decodeFileRecord(rec);
  if (d.kind !== 'control') throw new MmogitError('ERR_BAD_FRAME', `${peer} sent data to the sender`);
  if (d.frame.t === 'err') throw remoteError(d.frame, peer);
  return d.frame;
}

function checkStored(f: { a: SignedAck['ack']; sig: string }, offer: SignedFileOffer): SignedAck {
  const ack: SignedAck = { ack: f.a, sig: f.sig };
  if (ack.ack.by !== offer.message.to || ack.ack.id !== offer.message.id || !verifyAck(ack)) {
    throw new MmogitError('ERR_BAD_SIGNATURE', `the file ack from ${offer.message.to} does not verify`);
  }
  return ack;
}
