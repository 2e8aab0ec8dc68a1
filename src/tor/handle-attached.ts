/**
 * The attach-mode handle: uses a tor the user already runs, touching nothing but our own ephemeral onions;
 * when that tor goes away it waits for it (`waiting` events) and publishes the onions again once it is back.
 * @module
 */
import { sleep } from '../_async.js';
import { MmogitError, withTimeout } from '../errors.js';
import { type ControlTarget, TorController } from './control/index.js';
import {
  ATTACH_RETRY_MS,
  type AttachTorOptions,
  DEFAULT_TOR_ATTACH_TIMEOUT_MS,
  type TorDiedEvent,
  type TorProgress,
  type TorRestartedEvent,
  type TorWaitingEvent,
} from './daemon-types.js';
import { BaseHandle } from './handle-base.js';
import { republishEntry } from './onion-service.js';

export class AttachedTor extends BaseHandle {
  readonly mode = 'attach' as const;
  readonly controlPort: number | undefined;
  readonly pid: number | undefined = undefined;
  private readonly stopper = new AbortController();
  private attempts = 0;

  constructor(
    ctl: TorController,
    private readonly target: ControlTarget,
    private readonly options: AttachTorOptions,
  ) {
    super();
    this.ctl = ctl;
    this.controlPort = 'port' in target ? target.port : undefined;
    this.watch(ctl);
  }

  /** When `ctl` closes while we run: wait for the user's tor to come back (or give up, without reconnect). */
  private watch(ctl: TorController): void {
    void ctl.closed.then(() => {
      if (this.stopped || this.ctl !== ctl) return;
      this.ctl = undefined;
      const reconnect = this.options.reconnect ?? true;
      this.emit('died', { code: null, signal: null, willRestart: reconnect } satisfies TorDiedEvent);
      if (!reconnect) this.stopped = true;
      else void this.reconnect(Date.now());
    });
  }

  /**
   * Tries the control target every {@link ATTACH_RETRY_MS} until it answers (or the handle stops), then
   * authenticates, waits for bootstrap and publishes our onions again: tor dropped them with the old
   * connection (they are not detached, control-spec §3.27). Never gives up on its own: the user's tor is
   * the user's to bring back.
   */
  private async reconnect(since: number): Promise<void> {
    let error: string | undefined;
    for (let attempt = 1; !this.stopped; attempt++) {
      this.emit('waiting', {
        control: this.options.control,
        since,
        attempt,
        ...(error ? { error } : {}),
      } satisfies TorWaitingEvent);
      try {
        await sleep(ATTACH_RETRY_MS, { signal: this.stopper.signal });
      } catch {
        return;
      }
      const signal = withTimeout(this.stopper.signal, DEFAULT_TOR_ATTACH_TIMEOUT_MS, 'tor reconnect');
      let ctl: TorController | undefined;
      try {
        ctl = await TorController.connect(this.target, { signal });
        await ctl.authenticate({
          signal,
          ...(this.options.password !== undefined ? { password: this.options.password } : {}),
          ...(this.options.cookieFile !== undefined ? { cookieFile: this.options.cookieFile } : {}),
        });
        await this.settle(ctl, undefined, signal);
        this.ctl = ctl;
        const republished: string[] = [];
        const failed: { serviceId: string; code: string }[] = [];
        for (const entry of this.onions) {
          try {
            await republishEntry(ctl, entry, { signal });
            republished.push(entry.serviceId);
          } catch (e) {
            failed.push({ serviceId: entry.serviceId, code: (e as MmogitError).code ?? 'ERR_INTERNAL' });
          }
        }
        if (this.stopped) {
          await ctl.close().catch(() => {});
          return;
        }
        this.watch(ctl);
        this.attempts += 1;
        this.emit('restarted', {
          attempt: this.attempts,
          pid: 0,
          socksPort: this.socks.port,
          republished,
          failed,
        } satisfies TorRestartedEvent);
        return;
      } catch (e) {
        if (this.ctl === ctl) this.ctl = undefined;
        await ctl?.close().catch(() => {});
        error = e instanceof Error ? e.message : String(e);
      }
    }
  }

  async init(onProgress: ((p: TorProgress) => void) | undefined, signal: AbortSignal): Promise<void> {
    await this.settle(this.controller, onProgress, signal);
  }

  async stop(): Promise<void> {
    if (this.stopped && !this.ctl?.isOpen) return;
    this.stopped = true;
    this.stopper.abort(new MmogitError('ERR_ABORTED', 'tor handle stopped'));
    // Our onions are not detached: tor removes them when this connection closes (control-spec §3.27).
    await this.ctl?.close().catch(() => {});
  }
}
