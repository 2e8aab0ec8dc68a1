import { resolve } from 'node:path';
import { callDaemon } from '../../src/agent/daemon.js';
import type { SendFileResult } from '../../src/agent/files-send.js';
import { DEFAULT_FILE_TIMEOUT_MS, inspectFile } from '../../src/agent/files-send.js';
import { MmogitError } from '../../src/errors.js';
import { parseCount } from '../_numbers.js';
import { type CommandResult, endProgress, type GlobalOptions, progress } from '../output.js';
import { configDirOf } from './_context.js';

/** Files smaller than this send without a progress line (the transfer is over before one would help). */
const PROGRESS_FROM_BYTES = 4 * 1024 * 1024;
/** At most one progress line per this many ms (stderr may be a log file). */
const PROGRESS_EVERY_MS = 1_000;

interface SendFileArgs extends GlobalOptions {
  text?: string;
  stdin?: boolean;
  jsonBody?: boolean;
  type?: string;
  thread?: string;
  replyTo?: string;
  meta?: string[];
  maxFileBytes?: string;
  background?: boolean;
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

/**
 * `mmogit send <peer> --file PATH [--max-file-bytes N] [--background]` → `{"id","to","name","size","sha256",
 * "status","attempts","resumedFrom","ms","reused","error"?}`. The daemon opens the file itself (the path is made
 * absolute here); a directory, a missing or unreadable file and one over the cap are refused before the daemon
 * is asked. `status` is `delivered`, or `queued`: the signed offer is in the daemon's outbox (`mmogit outbox`)
 * and is resumed under the same id; `reused` says a pending entry of the same content to the same peer was
 * taken instead of a new one.
 */
export async function sendFile(args: SendFileArgs, to: string, file: string): Promise<CommandResult> {
  const clash = ['text', 'stdin', 'jsonBody', 'type', 'thread', 'replyTo', 'meta'].find(
    (k) => args[k as keyof SendFileArgs] !== undefined,
  );
  if (clash !== undefined) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--file sends a file alone: no text, --stdin, --type, …', {
      details: { field: clash },
    });
  }
  // resolve('') is the working directory: an empty --file would be refused as "<cwd> is a directory".
  if (file.trim() === '')
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--file needs a path', { details: { field: 'file' } });
  const path = resolve(file);
  const maxFileBytes =
    args.maxFileBytes === undefined
      ? undefined
      : parseCount(args.maxFileBytes, 'max-file-bytes', { min: 0, max: Number.MAX_SAFE_INTEGER });
  // Without the flag the daemon applies its own cap (config.json `maxFileBytes`); here only the file is checked.
  const local = await inspectFile(path, maxFileBytes ?? Number.MAX_SAFE_INTEGER);
  let last = 0;
  const show = (e: Record<string, unknown>) => {
    if (local.size < PROGRESS_FROM_BYTES || Date.now() - last < PROGRESS_EVERY_MS) return;
    last = Date.now();
    const bytes = Number(e.bytes ?? 0);
    const pct = local.size > 0 ? Math.floor((bytes / local.size) * 100) : 100;
    const verb = e.stage === 'hash' ? 'hashing' : e.stage === 'resume' ? 'resuming at' : 'sent';
    progress(
      `${verb} ${mib(bytes)} / ${mib(local.size)} MiB (${pct}%)${Number(e.attempt) > 1 ? ` — connection ${e.attempt}` : ''}`,
    );
  };
  const r = await callDaemon<Omit<SendFileResult, 'ack'>>(
    configDirOf(args),
    'sendFile',
    {
      onion: to,
      path,
      ...(maxFileBytes !== undefined ? { maxFileBytes } : {}),
      ...(args.background ? { background: true } : {}),
    },
    { timeoutMs: DEFAULT_FILE_TIMEOUT_MS + 60_000, onProgress: show },
  );
  if (last > 0) endProgress();
  const resumed = r.resumedFrom.length > 0 ? `, resumed ${r.resumedFrom.length}×` : '';
  if (r.status === 'queued') {
    const why = r.error ? ` (${r.error.code})` : '';
    return {
      data: r,
      human: `queued ${r.name} as ${r.id}${r.reused ? ' (already pending: reused)' : ''}${why}: the daemon resumes it; see mmogit outbox`,
    };
  }
  return {
    data: r,
    human: `delivered ${r.name} (${r.size} bytes, sha256 ${r.sha256}) as ${r.id} in ${(r.ms / 1000).toFixed(1)} s${resumed}`,
  };
}
