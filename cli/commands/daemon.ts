import { serveAgent } from '../../src/agent/daemon.js';
import type { CommandResult } from '../output.js';
import { configDirOf } from './_context.js';
import { startOptions, type TorStartArgs } from './tor-start.js';

/** `mmogit daemon` (internal): what `mmogit tor start` runs detached. Logs go to stderr (daemon.log). */
export default async function daemon(
  args: TorStartArgs & { networkBootstrap?: boolean },
): Promise<CommandResult> {
  const served = await serveAgent({
    configDir: configDirOf(args),
    ...startOptions(args),
    onProgress: (p) => process.stderr.write(`${new Date().toISOString()} progress ${JSON.stringify(p)}\n`),
  });
  const shutdown = () => void served.stop();
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // A stray rejection from a peer's stream must not take the agent down: log it and keep serving. An
  // uncaught exception leaves state unknown, so stop cleanly (tor with us) instead of dying mid-write.
  process.on('unhandledRejection', (e) => {
    process.stderr.write(
      `${new Date().toISOString()} unhandled rejection: ${(e as Error)?.stack ?? String(e)}\n`,
    );
  });
  process.on('uncaughtException', (e) => {
    process.stderr.write(
      `${new Date().toISOString()} uncaught exception, stopping: ${e.stack ?? e.message}\n`,
    );
    process.exitCode = 1;
    shutdown();
  });
  served.ready.then(
    (s) => process.stderr.write(`${new Date().toISOString()} ready ${s.onion}\n`),
    (e) => process.stderr.write(`${new Date().toISOString()} start failed: ${(e as Error).message}\n`),
  );
  await served.stopped;
  return { data: null, printed: true };
}
