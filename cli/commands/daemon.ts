import { serveAgent } from '../../src/agent/daemon.js';
import { MmogitError } from '../../src/errors.js';
import { terminalSafe, terminalSafeLines } from '../_terminal-safe.js';
import type { CommandResult } from '../output.js';
import { configDirOf } from './_context.js';
import { startOptions, type TorStartArgs } from './tor-start.js';

/** A line of daemon.log: timestamped, with peer-supplied text escaped (people read the log in a terminal). */
function logLine(text: string): void {
  process.stderr.write(`${new Date().toISOString()} ${terminalSafeLines(text)}\n`);
}

/** The control-port password `tor start` writes to our stdin (at most 4 KiB, one line). */
async function passwordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 4096) throw new MmogitError('ERR_TOO_LARGE', 'the control-port password is over 4 KiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `mmogit daemon` (internal): what `mmogit tor start` runs detached. Logs go to stderr (daemon.log). */
export default async function daemon(
  args: TorStartArgs & { networkBootstrap?: boolean; torPasswordStdin?: boolean },
): Promise<CommandResult> {
  const torPassword = args.torPasswordStdin ? await passwordFromStdin() : undefined;
  const served = await serveAgent({
    configDir: configDirOf(args),
    ...startOptions({ ...args, ...(torPassword ? { torPassword } : {}) }),
    onProgress: (p) => logLine(`progress ${terminalSafe(JSON.stringify(p))}`),
    // Hook output and hook warnings, one line each, into daemon.log.
    onLog: logLine,
  });
  const shutdown = () => void served.stop();
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // A stray rejection from a peer's stream must not take the agent down: log it and keep serving. An
  // uncaught exception leaves state unknown, so stop cleanly (tor with us) instead of dying mid-write.
  process.on('unhandledRejection', (e) => {
    logLine(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`);
  });
  process.on('uncaughtException', (e) => {
    logLine(`uncaught exception, stopping: ${e.stack ?? e.message}`);
    process.exitCode = 1;
    shutdown();
  });
  served.ready.then(
    (s) => logLine(`ready ${s.onion}`),
    (e) => logLine(`start failed: ${terminalSafe(String((e as Error)?.message ?? e))}`),
  );
  await served.stopped;
  return { data: null, printed: true };
}
