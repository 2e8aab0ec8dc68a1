/**
 * The `on-message` hook: an executable `<configDir>/hooks/on-message` that runs once per received message,
 * after the message is stored and acked, with the verified message as JSON on stdin and a few environment
 * variables. Runs are bounded in time (killed with their process group) and in number (a fixed number at once,
 * a bounded queue); their output goes to the agent's log. A failing, hanging or missing hook never delays an
 * ack or loses a message: the message is in the store before the hook hears of it.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MmogitError } from '../errors.js';
import type { AnySignedMessage } from './messaging-envelope-v2.js';
import type { ReceivedMessage } from './messaging-types.js';

/** The hook's file name under `<configDir>/hooks/`. */
export const ON_MESSAGE_HOOK = 'on-message';
/** Default bound on one run; then the hook's process group gets SIGTERM, and SIGKILL a second later. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** Default number of runs at once. */
export const DEFAULT_HOOK_CONCURRENCY = 2;
/** Default number of runs waiting; beyond it a message is not passed to the hook (it is stored all the same). */
export const DEFAULT_HOOK_QUEUE = 1_000;
/** Output kept per run and stream; the rest is dropped with a note. */
const OUTPUT_MAX_BYTES = 64 * 1024;
/** Grace between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 1_000;

/** Settings of {@link MessageHooks} (config.json `hooks`, start options). */
export interface HookSettings {
  /** Default {@link DEFAULT_HOOK_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default {@link DEFAULT_HOOK_CONCURRENCY}. */
  concurrency?: number;
  /** Default {@link DEFAULT_HOOK_QUEUE}. */
  maxQueued?: number;
}

/** How one run ended. */
export interface HookRun {
  id: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
}

/** What the hook finds at its path. */
export type HookState =
  | { state: 'missing'; path: string }
  | { state: 'ready'; path: string }
  | { state: 'not-executable'; path: string; error: MmogitError };

/** Where runs report: a log line (hook output and notes), and runtime events. */
export interface HookSinks {
  log(line: string): void;
  event?(type: string, detail: string): void;
}

/** What the hook reads on stdin: the message as the inbox shows it, and its signed envelope. */
export interface HookInput extends ReceivedMessage {
  envelope: AnySignedMessage;
}

function positive(n: number | undefined, fallback: number, name: string): number {
  if (n === undefined) return fallback;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new MmogitError('ERR_NETWORK_CONFIG', `hooks.${name} must be a positive integer`);
  }
  return n;
}

/**
 * Runs the `on-message` hook of a config dir.
 *
 * @example
 * const hooks = new MessageHooks(configDir, { log: (l) => process.stderr.write(`${l}\n`) });
 * messenger.on('received', (m, signed) => hooks.onMessage(m, signed));
 */
export class MessageHooks {
  readonly path: string;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly waiting: HookInput[] = [];
  private readonly running = new Map<ChildProcess, Promise<HookRun>>();
  /** Runs started and not finished (including the moment a run checks its file). */
  private active = 0;
  private warnedFor: number | undefined;
  private stopped = false;

  constructor(
    readonly configDir: string,
    private readonly sinks: HookSinks,
    settings: HookSettings = {},
  ) {
    this.path = join(configDir, 'hooks', ON_MESSAGE_HOOK);
    this.timeoutMs = positive(settings.timeoutMs, DEFAULT_HOOK_TIMEOUT_MS, 'timeoutMs');
    this.concurrency = positive(settings.concurrency, DEFAULT_HOOK_CONCURRENCY, 'concurrency');
    this.maxQueued = positive(settings.maxQueued, DEFAULT_HOOK_QUEUE, 'maxQueued');
  }

  /** What is at the hook's path; a file that is not executable is a typed warning (reported once per change). */
  async check(): Promise<HookState> {
    let mtime: number;
    try {
      const s = await stat(this.path);
      if (!s.isFile()) return this.notExecutable(s.mtimeMs, 'is not a regular file');
      mtime = s.mtimeMs;
    } catch {
      return { state: 'missing', path: this.path };
    }
    try {
      await access(this.path, constants.X_OK);
    } catch {
      return this.notExecutable(mtime, 'is not executable (chmod +x it)');
    }
    this.warnedFor = undefined;
    return { state: 'ready', path: this.path };
  }

  private notExecutable(mtime: number, why: string): HookState {
    const error = new MmogitError(
      'ERR_HOOK_NOT_EXECUTABLE',
      `hook ${this.path} ${why}; messages are not passed to it`,
      {
        details: { path: this.path },
      },
    );
    if (this.warnedFor !== mtime) {
      this.warnedFor = mtime;
      this.sinks.log(`mmogit: WARNING: ${error.message} [${error.code}]`);
      this.sinks.event?.('hook-error', `${error.code}: ${error.message}`);
    }
    return { state: 'not-executable', path: this.path, error };
  }

  /** Queues a run for a stored message. Returns at once and never throws. */
  onMessage(message: ReceivedMessage, envelope: AnySignedMessage): void {
    if (this.stopped) return;
    if (this.waiting.length >= this.maxQueued) {
      this.sinks.log(
        `mmogit: hook queue full (${this.maxQueued}); message ${message.id} not passed to the hook`,
      );
      this.sinks.event?.('hook-dropped', message.id);
      return;
    }
    this.waiting.push({ ...message, envelope });
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.concurrency && this.waiting.length > 0) {
      const input = this.waiting.shift() as HookInput;
      this.active++;
      void this.start(input).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  private async start(input: HookInput): Promise<void> {
    const state = await this.check();
    if (state.state !== 'ready' || this.stopped) return;
    const t0 = performance.now();
    const tag = `hook ${ON_MESSAGE_HOOK} ${input.id.slice(0, 8)}`;
    let child: ChildProcess;
    try {
      child = spawn(this.path, [], {
        cwd: this.configDir,
        // Its own process group, so a timeout kills whatever the hook started too.
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          MMOGIT_CONFIG_DIR: this.configDir,
          MMOGIT_MESSAGE_ID: input.id,
          MMOGIT_MESSAGE_FROM: input.from,
          MMOGIT_MESSAGE_TYPE: input.type,
          MMOGIT_MESSAGE_THREAD: input.thread,
          MMOGIT_MESSAGE_CURSOR: input.cursor ?? '',
        },
      });
    } catch (e) {
      this.sinks.log(`${tag}: could not start: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const run = new Promise<HookRun>((resolve) => {
      let timedOut = false;
      let settled = false;
      const kill = (sig: NodeJS.Signals) => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, sig);
        } catch {
          child.kill(sig);
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        this.sinks.log(`${tag}: still running after ${this.timeoutMs} ms; killed`);
        kill('SIGTERM');
        setTimeout(() => kill('SIGKILL'), KILL_GRACE_MS).unref();
      }, this.timeoutMs);
      timer.unref();
      for (const [stream, name] of [
        [child.stdout, 'stdout'],
        [child.stderr, 'stderr'],
      ] as const) {
        let kept = 0;
        let partial = '';
        stream?.on('data', (d: Buffer) => {
          if (kept >= OUTPUT_MAX_BYTES) return;
          kept += d.length;
          partial += d.toString('utf8');
          const lines = partial.split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) this.sinks.log(`${tag} ${name}: ${l}`);
          if (kept >= OUTPUT_MAX_BYTES)
            this.sinks.log(`${tag} ${name}: [output over ${OUTPUT_MAX_BYTES} bytes dropped]`);
        });
        stream?.on('end', () => {
          if (partial !== '') this.sinks.log(`${tag} ${name}: ${partial}`);
        });
      }
      const done = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const ms = performance.now() - t0;
        if (exitCode !== 0 || timedOut) {
          this.sinks.log(
            `${tag}: exited ${signal ? `by ${signal}` : `with ${exitCode}`} after ${Math.round(ms)} ms`,
          );
          this.sinks.event?.(
            'hook-failed',
            `${input.id}: ${timedOut ? 'timed out' : `exit ${exitCode ?? signal}`}`,
          );
        }
        resolve({ id: input.id, exitCode, signal, timedOut, ms });
      };
      child.on('error', (e) => {
        this.sinks.log(`${tag}: ${e.message}`);
        done(null, null);
      });
      // 'exit', not 'close': a grandchild holding the pipes open must not keep the slot.
      child.on('exit', (code, signal) => done(code, signal));
      child.stdin?.on('error', () => {}); // a hook that does not read its stdin
      child.stdin?.end(`${JSON.stringify(input)}\n`);
    });
    this.running.set(child, run);
    await run;
    this.running.delete(child);
  }

  /** Drops queued runs and kills running ones (their process groups); resolves when they have exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting.length = 0;
    for (const child of this.running.keys()) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
    await Promise.allSettled([...this.running.values()]);
  }

  /** Runs in progress and waiting (for tests and status). */
  get load(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.waiting.length };
  }
}
