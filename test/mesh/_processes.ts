// Mesh processes for tests: relays and a SOCKS entry as real `mmogit` processes (dist/), each killed at the end.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';

const BUILT = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface MeshProcess {
  proc: ChildProcess;
  pid: number;
  info: Record<string, unknown>;
  /** stderr lines so far. */
  stderr: string[];
  /** `mesh-event` objects so far. */
  events: Record<string, unknown>[];
  /** Resolves with the first event matching `pred` (bounded by `timeoutMs`). */
  waitEvent(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();

/** SIGKILLs every process started here that is still running (afterAll). */
export function killAll(): void {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  live.clear();
}

/** Starts `mmogit <args…> --json`, resolving once it printed its JSON document (bounded). */
export function startMmogit(
  args: string[],
  options: { script?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<MeshProcess> {
  if (!options.script && !existsSync(BUILT)) throw new Error('dist/ is missing: run `npm run build`');
  const proc = spawn(process.execPath, [options.script ?? MMOGIT_BIN, ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  live.add(proc);
  const stderr: string[] = [];
  const events: Record<string, unknown>[] = [];
  const waiters = new Set<{
    pred: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }>();
  let errBuf = '';
  proc.stderr?.on('data', (d: Buffer) => {
    errBuf += d.toString();
    for (let nl = errBuf.indexOf('\n'); nl >= 0; nl = errBuf.indexOf('\n')) {
      const line = errBuf.slice(0, nl);
      errBuf = errBuf.slice(nl + 1);
      stderr.push(line);
      if (line.startsWith('mesh-event ')) {
        const e = JSON.parse(line.slice('mesh-event '.length)) as Record<string, unknown>;
        events.push(e);
        for (const w of waiters)
          if (w.pred(e)) {
            waiters.delete(w);
            w.resolve(e);
          }
      }
    }
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`mmogit ${args.join(' ')} did not start:\n${stderr.join('\n')}`));
    }, options.timeoutMs ?? 30_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const info = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
      resolve({
        proc,
        pid: proc.pid as number,
        info,
        stderr,
        events,
        waitEvent(pred, timeoutMs) {
          const have = events.find(pred);
          if (have) return Promise.resolve(have);
          return new Promise((res, rej) => {
            const w = {
              pred,
              resolve: (e: Record<string, unknown>) => {
                clearTimeout(t);
                res(e);
              },
            };
            const t = setTimeout(() => {
              waiters.delete(w);
              rej(new Error(`no matching mesh event in ${timeoutMs} ms; events: ${JSON.stringify(events)}`));
            }, timeoutMs);
            waiters.add(w);
          });
        },
        kill(signal = 'SIGKILL') {
          proc.kill(signal);
        },
      });
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mmogit ${args.join(' ')} exited ${code}:\n${stderr.join('\n')}`));
    });
  });
}

/** `mmogit init` for each dir (parallel). */
export async function initDirs(dirs: string[]): Promise<void> {
  await Promise.all(
    dirs.map(async (d) => {
      const r = await runCli(['init', '--json', '--config-dir', d]);
      if (r.exitCode !== 0) throw new Error(r.stderr);
    }),
  );
}

/** An HTTP server on 127.0.0.1 serving `body` at every path (the mesh's real client is curl). */
export async function httpServer(body: Buffer): Promise<{ server: Server; port: number; sha256: string }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as { port: number }).port,
    sha256: createHash('sha256').update(body).digest('hex'),
  };
}
