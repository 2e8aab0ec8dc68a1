/**
 * The spawn-mode handle: runs the system `tor` with our torrc, takes ownership of it (tor exits when we do),
 * waits for bootstrap, and restarts it (bounded) if it dies, publishing our onions again.
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError, throwIfAborted, withTimeout } from '../errors.js';
import { readControlPortFile, TorController } from './control/index.js';
import {
  DAEMON_FILES,
  DEFAULT_TOR_START_TIMEOUT_MS,
  DEFAULT_TOR_STOP_TIMEOUT_MS,
  MAX_TOR_RESTARTS,
  RESTART_WINDOW_MS,
  type TorDiedEvent,
  type TorProgress,
  type TorRestartedEvent,
} from './daemon-types.js';
import { BaseHandle } from './handle-base.js';
import { republishEntry } from './onion-service.js';

export class SpawnedTor extends BaseHandle {
  readonly mode = 'spawn' as const;
  readonly dataDir: string;
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private tail: string[] = [];
  private portInUse: string | undefined;
  private restarts: number[] = [];
  private fixedPorts: { socks?: number; control?: number };
  private control = 0;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly tor: string,
    private readonly torrcFor: (ports: { socks?: number; control?: number }) => string,
    dataDir: string,
    ports: { socks?: number; control?: number },
    private readonly autoRestart: boolean,
    private readonly restartLimit = { max: MAX_TOR_RESTARTS, windowMs: RESTART_WINDOW_MS },
    /** tor's environment (the TCP_NODELAY shim's `LD_PRELOAD` on a private network, nodelay.ts). */
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    super();
    this.dataDir = dataDir;
    this.fixedPorts = ports;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get controlPort(): number {
    return this.control;
  }

  /** Spawns tor, connects, takes ownership, waits for bootstrap. Cleans up after itself on failure. */
  async launch(
    ports: { socks?: number; control?: number },
    onProgress: ((p: TorProgress) => void) | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const portFile = join(this.dataDir, DAEMON_FILES.controlPort);
    await rm(portFile, { force: true });
    await writeFile(join(this.dataDir, DAEMON_FILES.torrc), this.torrcFor(ports), { mode: 0o600 });
    await writeFile(join(this.dataDir, DAEMON_FILES.defaults), '', { mode: 0o600 });
    this.tail = [];
    this.portInUse = undefined;
    this.log ??= createWriteStream(join(this.dataDir, DAEMON_FILES.log), { flags: 'a', mode: 0o600 });

    // --defaults-torrc: an empty file keeps the system's torrc-defaults out (control-spec-independent).
    const child = spawn(
      this.tor,
      [
        '--defaults-torrc',
        join(this.dataDir, DAEMON_FILES.defaults),
        '-f',
        join(this.dataDir, DAEMON_FILES.torrc),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: this.env },
    );
    this.child = child;
    const spawnFailed = new Promise<never>((_, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT' || err.code === 'EACCES'
            ? new MmogitError('ERR_TOR_NOT_FOUND', `cannot run tor (${this.tor}): ${err.code}`, {
                cause: err,
              })
            : new MmogitError('ERR_TOR_START_FAILED', `cannot run tor: ${err.message}`, { cause: err }),
        );
      });
    });
    this.exited = new Promise<void>((r) => child.once('exit', () => r()));
    const exitedEarly = new Promise<never>((_, reject) => {
      child.once('exit', (code, sig) => reject(this.startError(code, sig)));
    });
    spawnFailed.catch(() => {});
    exitedEarly.catch(() => {});
    const onOutput = (chunk: Buffer) => {
      this.log?.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
        const m = /Could not bind to (\S+): Address already in use/.exec(line);
        if (m) this.portInUse = m[1]!;
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);

    try {
      const race = <T>(p: Promise<T>) => Promise.race([p, spawnFailed, exitedEarly]);
      const target = await race(readControlPortFile(portFile, { signal, timeoutMs: 60_000 }));
      this.control = target.port;
      const ctl = await race(TorController.connect(target, { signal }));
      this.ctl = ctl;
      await race(ctl.authenticate({ signal, cookieFile: join(this.dataDir, 'control_auth_cookie') }));
      // control-spec §3.23: from now on tor exits when this connection closes (i.e. when we exit).
      await race(ctl.takeOwnership({ signal }));
      await race(this.settle(ctl, onProgress, signal));
    } catch (e) {
      await this.kill();
      throw signal.aborted ? abortReason(signal, 'tor start') : e;
    }
    // Keep the ports for a restart, so dialers holding the SOCKS port keep working.
    this.fixedPorts = { socks: this.socks.port, control: this.control };
    child.once('exit', (code, sig) => {
      if (this.child === child) void this.onDeath(code, sig);
    });
  }

  private startError(code: number | null, sig: NodeJS.Signals | null): MmogitError {
    const log = this.tail.slice(-12).join('\n');
    if (this.portInUse) {
      return new MmogitError(
        'ERR_PORT_IN_USE',
        `tor could not bind ${this.portInUse}: address already in use`,
        {
          details: { address: this.portInUse, log },
        },
      );
    }
    return new MmogitError('ERR_TOR_START_FAILED', `tor exited during start-up (${code ?? sig}):\n${log}`, {
      details: { code, signal: sig, log },
    });
  }

  private async onDeath(code: number | null, sig: NodeJS.Signals | null): Promise<void> {
    if (this.stopped) return;
    const old = this.ctl;
    this.ctl = undefined;
    void old?.close().catch(() => {});
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < this.restartLimit.windowMs);
    const willRestart = this.autoRestart && this.restarts.length < this.restartLimit.max;
    this.emit('died', { code, signal: sig, willRestart } satisfies TorDiedEvent);
    if (!willRestart) {
      this.stopped = true;
      this.emit(
        'restart-failed',
        new MmogitError('ERR_TOR_START_FAILED', `tor died (${code ?? sig}) and restarts are exhausted`, {
          details: { restarts: this.restarts.length },
        }),
      );
      return;
    }
    this.restarts.push(now);
    const attempt = this.restarts.length;
    const signal = withTimeout(undefined, DEFAULT_TOR_START_TIMEOUT_MS, 'tor restart');
    try {
      try {
        await this.launch(this.fixedPorts, undefined, signal);
      } catch (e) {
        if (!(e instanceof MmogitError && e.code === 'ERR_PORT_IN_USE') || this.stopped) throw e;
        // Someone took our old port in between: take new ones.
        await this.launch({}, undefined, signal);
      }
      if (this.stopped) {
        await this.kill();
        return;
      }
      const republished: string[] = [];
      const failed: { serviceId: string; code: string }[] = [];
      for (const entry of this.onions) {
        try {
          await republishEntry(this.controller, entry, { signal });
          republished.push(entry.serviceId);
        } catch (e) {
          failed.push({ serviceId: entry.serviceId, code: (e as MmogitError).code ?? 'ERR_INTERNAL' });
        }
      }
      this.emit('restarted', {
        attempt,
        pid: this.child?.pid ?? 0,
        socksPort: this.socks.port,
        republished,
        failed,
      } satisfies TorRestartedEvent);
    } catch (e) {
      if (this.stopped) return;
      this.stopped = true;
      await this.kill();
      this.emit(
        'restart-failed',
        e instanceof MmogitError
          ? e
          : new MmogitError('ERR_TOR_START_FAILED', 'tor restart failed', { cause: e }),
      );
    }
  }

  /** Ends the current child: close the owning connection (tor exits ~0.07 s later), then SIGTERM, SIGKILL. */
  private async kill(timeoutMs = DEFAULT_TOR_STOP_TIMEOUT_MS): Promise<void> {
    const child = this.child;
    const ctl = this.ctl;
    this.ctl = undefined;
    await ctl?.close().catch(() => {});
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = (ms: number) =>
      Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (await gone(Math.min(1_000, timeoutMs))) return;
    child.kill('SIGTERM');
    if (await gone(timeoutMs)) return;
    child.kill('SIGKILL');
    await gone(2_000);
  }

  async stop(options: AbortOptions = {}): Promise<void> {
    if (this.stopped && (!this.child || this.child.exitCode !== null || this.child.signalCode !== null)) {
      this.log?.end();
      this.log = undefined;
      return;
    }
    this.stopped = true;
    throwIfAborted(options.signal, 'tor stop');
    await this.kill(options.timeoutMs ?? DEFAULT_TOR_STOP_TIMEOUT_MS);
    this.log?.end();
    this.log = undefined;
  }
}
