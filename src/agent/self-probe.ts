/**
 * Probing the agent's own onion the way a stranger would reach it, so an onion that went silently
 * unreachable (descriptor not re-uploaded, introduction points lost) is noticed and published again:
 *
 * 1. `HSFETCH <serviceId>` (control-spec §3.26): tor fetches our descriptor from a responsible HSDir and
 *    answers with an `HS_DESC RECEIVED` or `HS_DESC FAILED` event (§4.1.25) — the descriptor is on the ring;
 * 2. a SOCKS connect to `<onion>:<port>` with a fresh isolation username, so tor builds new circuits
 *    (`IsolateSOCKSAuth`, on by default) instead of reusing a rendezvous circuit that still works: the
 *    introduction and rendezvous run again, and tor answers success only once our listener accepted the
 *    stream (rend-spec-v3 §4, the service connects to its target before RELAY_CONNECTED). The stream is
 *    closed at once; nothing is sent on it.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import type { TorController, TorEvent } from '../tor/control/index.js';
import { socksConnect } from '../tor/socks.js';
import { asMmogitError } from './_errors.js';

/** Default bound on one probe (the descriptor fetch and the rendezvous together). */
export const DEFAULT_PROBE_TIMEOUT_MS = 60_000;

/** What the probe needs of the tor handle (a `TorHandle` has it). */
export interface ProbeTor {
  readonly controller: TorController;
  readonly socksHost: string;
  readonly socksPort: number;
}

/** The onion to probe. */
export interface ProbeTarget {
  serviceId: string;
  /** `<serviceId>.onion` */
  onion: string;
  virtualPort: number;
}

/** One probe's outcome. `stage` names where a failed probe stopped. */
export interface ProbeResult {
  ok: boolean;
  /** When the probe ended, ms since the epoch. */
  at: number;
  ms: number;
  /** Time of the descriptor fetch and of the rendezvous, ms (absent when not reached). */
  descriptorMs?: number;
  connectMs?: number;
  stage?: 'descriptor' | 'connect';
  error?: { code: string; message: string };
}

/**
 * Fetches our own descriptor from an HSDir; resolves with its time in ms.
 * @throws `ERR_TOR_ONION_PUBLISH` when tor reports `HS_DESC FAILED` (reason in details), `ERR_TIMEOUT`.
 */
export async function fetchOwnDescriptor(
  ctl: TorController,
  serviceId: string,
  options: AbortOptions = {},
): Promise<number> {
  const what = `HSFETCH ${serviceId}`;
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, what);
  const t0 = performance.now();
  let listener: ((e: TorEvent) => void) | undefined;
  // Listen before asking: the answer is an event that may arrive right after the 250.
  const answered = new Promise<void>((resolve, reject) => {
    listener = (e: TorEvent) => {
      if (e.type !== 'HS_DESC' || e.address !== serviceId) return;
      if (e.action === 'RECEIVED') resolve();
      else if (e.action === 'FAILED') {
        reject(
          new MmogitError(
            'ERR_TOR_ONION_PUBLISH',
            `our descriptor is not on the HSDirs (${e.reason ?? 'FAILED'})`,
            {
              details: { reason: e.reason ?? 'UNKNOWN', ...(e.hsDir ? { hsDir: e.hsDir } : {}) },
            },
          ),
        );
      }
    };
    ctl.on('event', listener);
    const onAbort = () => reject(abortReason(signal, what));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void ctl.closed.then(() =>
      reject(new MmogitError('ERR_TOR_CONTROL_CLOSED', `${what}: tor control connection closed`)),
    );
  });
  answered.catch(() => {});
  try {
    // The handle keeps HS_DESC subscribed (it waits for uploads the same way).
    await ctl.request(what, { signal });
    await answered;
    return performance.now() - t0;
  } finally {
    if (listener) ctl.off('event', listener);
  }
}

/**
 * Probes `target` through `tor` (see the module comment). Never throws: a failure is a result with `ok:
 * false`, the `stage` it reached and the error's code.
 *
 * @example
 * const r = await probeOnion(tor, { serviceId: key.serviceId, onion: key.onion, virtualPort: 4001 });
 * if (!r.ok) log('onion unreachable at %s: %s', r.stage, r.error?.code);
 */
export async function probeOnion(
  tor: ProbeTor,
  target: ProbeTarget,
  options: AbortOptions = {},
): Promise<ProbeResult> {
  const t0 = performance.now();
  const signal = withTimeout(
    options.signal,
    options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
    'onion self-probe',
  );
  const done = (r: Omit<ProbeResult, 'at' | 'ms'>): ProbeResult => ({
    ...r,
    at: Date.now(),
    ms: Math.round(performance.now() - t0),
  });
  let descriptorMs: number;
  try {
    descriptorMs = Math.round(await fetchOwnDescriptor(tor.controller, target.serviceId, { signal }));
  } catch (e) {
    const err = asMmogitError(e);
    return done({ ok: false, stage: 'descriptor', error: { code: err.code, message: err.message } });
  }
  const t1 = performance.now();
  try {
    const socket = await socksConnect(
      {
        socksHost: tor.socksHost,
        socksPort: tor.socksPort,
        host: target.onion,
        port: target.virtualPort,
        // A username never used before: tor may not reuse any circuit for this stream.
        isolationKey: `self-probe:${randomBytes(16).toString('hex')}`,
      },
      { signal },
    );
    socket.destroy();
  } catch (e) {
    const err = asMmogitError(e);
    return done({
      ok: false,
      stage: 'connect',
      descriptorMs,
      error: { code: err.code, message: err.message },
    });
  }
  return done({ ok: true, descriptorMs, connectMs: Math.round(performance.now() - t1) });
}
