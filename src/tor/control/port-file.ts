import { readFile } from 'node:fs/promises';
import { type AbortOptions, sleep } from '../../_async.js';
import { abortReason, MmogitError, withTimeout } from '../../errors.js';
import { clip, TorControlError } from './errors.js';

const POLL_MS = 50;

/**
 * Reads the file tor writes for `ControlPortWriteToFile` (`PORT=127.0.0.1:46319`, one line per listener)
 * and returns the first TCP listener. With `timeoutMs`, waits for the file to appear (tor writes it once
 * its control listener is open); without, reads once.
 *
 * @throws MmogitError `ERR_TOR_START_FAILED` when the file does not exist (in time);
 *   TorControlError `ERR_TOR_CONTROL_PROTOCOL` when it holds no `PORT=host:port` line.
 * @example
 * ```ts
 * const target = await readControlPortFile(`${dataDir}/control.port`, { timeoutMs: 10_000 });
 * const tor = await TorController.connect(target);
 * ```
 */
export async function readControlPortFile(
  path: string,
  options: AbortOptions = {},
): Promise<{ host: string; port: number }> {
  const what = `read tor control port file ${path}`;
  const signal = options.timeoutMs ? withTimeout(options.signal, options.timeoutMs, what) : options.signal;
  let text: string | undefined;
  while (text === undefined) {
    if (signal?.aborted) {
      const reason = abortReason(signal, what);
      if (reason.code !== 'ERR_TIMEOUT') throw reason;
      throw new MmogitError('ERR_TOR_START_FAILED', `tor did not write ${path} in time`, {
        cause: reason,
        details: { path },
      });
    }
    try {
      const t = await readFile(path, 'utf8');
      // tor writes the file through a temporary name; an empty read means we are early.
      if (t.includes('\n')) text = t;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!signal) {
        throw new MmogitError('ERR_TOR_START_FAILED', `tor control port file ${path} does not exist`, {
          cause: err,
          details: { path },
        });
      }
    }
    // Stop waiting on abort; the loop's check above turns it into the typed error.
    if (text === undefined) await sleep(POLL_MS, { signal }).catch(() => {});
  }
  for (const line of text.split(/\r?\n/)) {
    const m = /^PORT=(.+):(\d+)$/.exec(line.trim());
    if (m) {
      const port = Number(m[2]);
      if (port > 0 && port < 65536) return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
    }
  }
  throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', `no PORT= line in ${path}`, {
    details: { raw: clip(text), path },
  });
}
