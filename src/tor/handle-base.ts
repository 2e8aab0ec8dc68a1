/**
 * What both tor handles share: the event typing, the current controller and SOCKS listener, waiting for
 * bootstrap on a new control connection, and publishing our onions again.
 * @module
 */

import { EventEmitter } from 'node:events';
import type { AbortOptions } from '../_async.js';
import { MmogitError } from '../errors.js';
import type { BootstrapStatus, TorController } from './control/index.js';
import type { TorHandle, TorHandleEvents, TorProgress } from './daemon-types.js';
import { type PublishedOnionEntry, republishEntry } from './onion-service.js';

function toProgress(s: BootstrapStatus): TorProgress {
  return {
    progress: s.progress,
    summary: s.summary,
    tag: s.tag,
    ...(s.warning !== undefined ? { warning: s.warning } : {}),
    ...(s.recommendation !== undefined ? { recommendation: s.recommendation } : {}),
  };
}

/** Events every handle keeps subscribed: bootstrap steps and onion descriptor uploads. */
const HANDLE_EVENTS = ['STATUS_CLIENT', 'HS_DESC'];

export abstract class BaseHandle extends EventEmitter implements TorHandle {
  abstract readonly mode: 'spawn' | 'attach';
  readonly onions = new Set<PublishedOnionEntry>();
  protected ctl: TorController | undefined;
  protected socks = { host: '127.0.0.1', port: 0 };
  protected stopped = false;

  get controller(): TorController {
    if (!this.ctl) throw new MmogitError('ERR_TOR_CONTROL_CLOSED', 'tor is not connected');
    return this.ctl;
  }
  get socksHost(): string {
    return this.socks.host;
  }
  get socksPort(): number {
    return this.socks.port;
  }
  get running(): boolean {
    return !this.stopped;
  }

  override on<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends keyof TorHandleEvents>(
    event: K,
    listener: (...args: TorHandleEvents[K]) => void,
  ): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  /** Connects the controller's events, reads the SOCKS listener, and waits for bootstrap. */
  protected async settle(
    ctl: TorController,
    onProgress: ((p: TorProgress) => void) | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    await ctl.setEvents(HANDLE_EVENTS, { signal });
    // A problem flagged RECOMMENDATION=warn is shown, not acted on: tor keeps retrying by itself, and
    // restarting it would only reset its backoff (the restart loops other apps are known for).
    await ctl.waitForBootstrap({
      signal,
      onWarning: 'continue',
      onProgress: (s) => {
        const p = toProgress(s);
        onProgress?.(p);
        this.emit('progress', p);
      },
    });
    const listeners = await ctl.socksListeners({ signal });
    const first = listeners[0];
    if (!first) {
      throw new MmogitError('ERR_TOR_START_FAILED', 'tor has no SocksPort (net/listeners/socks is empty)');
    }
    this.socks = {
      host: first.host === '0.0.0.0' || first.host === '::' ? '127.0.0.1' : first.host,
      port: first.port,
    };
  }

  async republish(options: AbortOptions = {}): Promise<string[]> {
    const out: string[] = [];
    for (const entry of this.onions) {
      await republishEntry(this.controller, entry, options);
      out.push(entry.serviceId);
    }
    return out;
  }

  abstract stop(options?: AbortOptions): Promise<void>;
}
