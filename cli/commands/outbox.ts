import { callDaemon } from '../../src/agent/daemon.js';
import type { PendingFile } from '../../src/agent/file-queue.js';
import { MESSAGE_ID_RE } from '../../src/agent/messaging-envelope-v2.js';
import type { PendingMessage } from '../../src/agent/messaging-types.js';
import { MmogitError } from '../../src/errors.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

interface OutboxArgs extends GlobalOptions {
  action?: string;
  id?: string;
}

function when(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'now (attempt running)';
}

/**
 * `mmogit outbox [list]` → `[{"id","to","type","preview","queuedAt","attempts","nextAttemptAt","lastError"?}]`,
 * a file entry (type `file`) with `"file":{"name","size","sha256","path","state":"pending"|"failed","offset"}`;
 * `outbox retry <id>` → `{"id","status":"delivered"|"queued"|"refused"|"failed"|"sending","error"?}` (attempted
 * now; a failed file is hashed again first, `sending`: a file transfer still running after 30 s);
 * `outbox drop <id>` → `{"id","to"}` (given up: it leaves the outbox unsent).
 */
export default async function outbox(args: OutboxArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  const sub = args.action ?? 'list';
  if (sub === 'list' && args.id !== undefined) {
    // `outbox list <id>` listed everything: the id was ignored.
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'outbox list takes no id (retry <id>, drop <id>)');
  }
  if (sub === 'retry' || sub === 'drop') {
    if (args.id === undefined) {
      throw new MmogitError(
        'ERR_INVALID_ARGUMENT',
        `outbox ${sub} needs the id of a queued message (see mmogit outbox)`,
      );
    }
    const id = args.id;
    if (!MESSAGE_ID_RE.test(id)) {
      throw new MmogitError(
        'ERR_INVALID_ARGUMENT',
        `"${t(id.slice(0, 40))}" is not a message id (32 hex characters)`,
      );
    }
    if (sub === 'drop') {
      const r = await callDaemon<{ id: string; to: string }>(configDir, 'outbox', { action: 'drop', id });
      return { data: r, human: `dropped ${r.id} (to ${r.to}): it will not be sent` };
    }
    const r = await callDaemon<{ id: string; status: string; error?: { code: string; message: string } }>(
      configDir,
      'outbox',
      { action: 'retry', id },
      { timeoutMs: 120_000 },
    );
    return {
      data: r,
      human: r.error
        ? `${r.status} (${r.id}): ${t(r.error.message)} [${r.error.code}]`
        : `${r.status} (${r.id})`,
    };
  }
  const items = await callDaemon<(PendingMessage & Partial<Pick<PendingFile, 'file'>>)[]>(
    configDir,
    'outbox',
    {
      action: 'list',
    },
  );
  const state = (m: (typeof items)[number]) =>
    m.file
      ? `\n    file ${t(m.file.path)}, ${m.file.size} bytes, sha256 ${m.file.sha256}, ${m.file.state}${m.file.offset > 0 ? `, receiver holds ${m.file.offset}` : ''}`
      : '';
  return {
    data: items,
    human:
      items.length === 0
        ? 'the outbox is empty'
        : items
            .map(
              (m) =>
                `${m.id}  to ${m.to.slice(0, 16)}…  [${t(m.type)}] ${t(m.preview)}\n    queued ${new Date(m.queuedAt).toISOString()}, ${m.attempts} attempt(s), ${m.file?.state === 'failed' ? 'failed' : `next ${when(m.nextAttemptAt)}`}${m.lastError ? `, last error ${m.lastError.code}` : ''}${state(m)}`,
            )
            .join('\n'),
  };
}
