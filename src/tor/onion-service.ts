/**
 * Publishing the agent's own v3 onion service with `ADD_ONION` (control-spec §3.27) and waiting until its
 * descriptor is on an HSDir (`HS_DESC UPLOADED`, control-spec §4.1.25).
 *
 * The service is ephemeral and tied to the control connection; the tor handle (`TorHandle` in daemon.ts, an
 * {@link OnionHost}) keeps a list of its onions and publishes them again after a tor restart.
 * @module
 */
import type { AbortOptions } from '../_async.js';
import { abortReason, MmogitError, withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import type { TorController, TorEvent } from './control/index.js';

/** The onion's virtual port agents listen on (`<onion>:4001`, like libp2p's customary 4001). */
export const DEFAULT_ONION_VIRTUAL_PORT = 4001;
/** Default bound on {@link publishOnion}, descriptor upload included (measured: ~1.1 s on the testnet). */
export const DEFAULT_ONION_PUBLISH_TIMEOUT_MS = 60_000;

/** @internal What a handle keeps to publish an onion again. Holds the key: never serialise it. */
export interface PublishedOnionEntry {
  readonly key: AgentKey;
  readonly serviceId: string;
  readonly virtualPort: number;
  readonly targetPort: number;
  /** More virtual ports on the same onion (e.g. 80 → the A2A server's Unix socket). */
  readonly extraPorts?: readonly OnionPortTarget[];
}

/** One more `Port=` of the onion: `virtualPort` forwards to `target` (`127.0.0.1:port` or `unix:/path`). */
export interface OnionPortTarget {
  virtualPort: number;
  target: string;
}

/** A published onion service. */
export interface OnionService {
  readonly serviceId: string;
  /** `<serviceId>.onion` */
  readonly onion: string;
  readonly virtualPort: number;
  /** The local port on 127.0.0.1 tor forwards to. */
  readonly targetPort: number;
  /** `DEL_ONION`; idempotent, and the handle stops re-publishing it. */
  remove(options?: AbortOptions): Promise<void>;
}

/** Timings of one publication. */
export interface PublishTimings {
  /** From the call until ready (the upload included when waited for). */
  publishMs: number;
  /** ADD_ONION round trip. */
  addMs: number;
  /** From ADD_ONION to the first `HS_DESC UPLOADED`: tor's own publish time. */
  uploadMs?: number;
}

export interface PublishOnionOptions extends AbortOptions {
  /** Local port on 127.0.0.1 that tor forwards the onion's `virtualPort` to. */
  targetPort: number;
  virtualPort?: number;
  /** More ports on the same onion, each to a loopback port or a Unix socket (never another host). */
  extraPorts?: readonly OnionPortTarget[];
  /** Wait for the first `HS_DESC UPLOADED` (default true). Peers can only connect after it. */
  waitForUpload?: boolean;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `${what} must be an integer in 1..65535`, {
      details: { [what]: port },
    });
  }
}

/**
 * ADD_ONION for `entry` on `ctl`, then (optionally) waits for its descriptor upload.
 * @internal used by publishOnion and by the handle after a restart.
 */
export async function republishEntry(
  ctl: TorController,
  entry: PublishedOnionEntry,
  options: AbortOptions & { waitForUpload?: boolean } = {},
): Promise<Omit<PublishTimings, 'publishMs'>> {
  const what = `publish onion ${entry.serviceId}`;
  const signal = withTimeout(options.signal, options.timeoutMs ?? DEFAULT_ONION_PUBLISH_TIMEOUT_MS, what);
  const wait = options.waitForUpload ?? true;
  // Listen before ADD_ONION: we know the ServiceID in advance, so no upload event can be missed.
  let uploadedAt: number | undefined;
  let onUploaded: (() => void) | undefined;
  const listener = (e: TorEvent) => {
    if (e.type === 'HS_DESC' && e.action === 'UPLOADED' && e.address === entry.serviceId) {
      uploadedAt ??= Date.now();
      onUploaded?.();
    }
  };
  ctl.on('event', listener);
  try {
    const t0 = Date.now();
    let serviceId: string;
    try {
      ({ serviceId } = await ctl.addOnion(
        {
          key: entry.key.addOnionKey(),
          ports: [
            { virtualPort: entry.virtualPort, target: `127.0.0.1:${entry.targetPort}` },
            ...(entry.extraPorts ?? []),
          ],
          // We hold the key already: tor need not send it back (control-spec §3.27).
          flags: ['DiscardPK'],
        },
        { signal },
      ));
    } catch (e) {
      if (signal.aborted) throw abortReason(signal, what);
      const status = (e as { statusCode?: unknown }).statusCode;
      throw new MmogitError(
        'ERR_TOR_ONION_PUBLISH',
        status === 550
          ? `${what}: tor already serves this onion (another agent with the same key?)`
          : `${what}: ${(e as Error).message}`,
        { cause: e, details: { serviceId: entry.serviceId, ...(status ? { statusCode: status } : {}) } },
      );
    }
    const addMs = Date.now() - t0;
    if (serviceId !== entry.serviceId) {
      await ctl.delOnion(serviceId).catch(() => {});
      throw new MmogitError(
        'ERR_INTERNAL',
        `tor derived ${serviceId} from our key, expected ${entry.serviceId}`,
      );
    }
    if (!wait) return { addMs };
    if (uploadedAt === undefined) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => reject(abortReason(signal, `${what}: waiting for HS_DESC UPLOADED`));
          onUploaded = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
          void ctl.closed.then(() =>
            reject(new MmogitError('ERR_TOR_CONTROL_CLOSED', `${what}: tor control connection closed`)),
          );
        });
      } catch (e) {
        // Do not leave a half-published service behind.
        if (ctl.isOpen) await ctl.delOnion(entry.serviceId).catch(() => {});
        throw e;
      }
    }
    return { addMs, uploadMs: (uploadedAt ?? Date.now()) - t0 };
  } finally {
    ctl.off('event', listener);
  }
}

/**
 * What publishing needs of a tor: its controller, whether it still runs, and the list of onions it publishes
 * again after a restart. `TorHandle` (daemon.ts) is one; this file needs nothing else of it, so the daemon can
 * import the publishing code without a circle back.
 */
export interface OnionHost {
  readonly controller: TorController;
  readonly running: boolean;
  readonly onions: Set<PublishedOnionEntry>;
}

/**
 * Publishes the agent's onion (its own key, so the address is `key.onion`): `<onion>:virtualPort` forwards
 * to `127.0.0.1:targetPort`. By default resolves once the descriptor is uploaded to an HSDir; peers dialing
 * right after may still get SOCKS reply 4 for about a second, so dialers retry with backoff
 * (`dialOnion({ retry: {} })`). The handle re-publishes it after a tor restart.
 *
 * @throws `ERR_TOR_ONION_PUBLISH` (tor refused, e.g. already published), `ERR_TIMEOUT`, `ERR_ABORTED`,
 *   `ERR_INVALID_ARGUMENT`.
 * @example
 * const svc = await publishOnion(tor, key, { targetPort: server.address().port });
 * svc.onion === key.onion; // true
 */
export async function publishOnion(
  tor: OnionHost,
  key: AgentKey,
  options: PublishOnionOptions,
): Promise<OnionService & PublishTimings> {
  const t0 = Date.now();
  const virtualPort = options.virtualPort ?? DEFAULT_ONION_VIRTUAL_PORT;
  checkPort(options.targetPort, 'targetPort');
  checkPort(virtualPort, 'virtualPort');
  for (const extra of options.extraPorts ?? []) {
    checkPort(extra.virtualPort, 'virtualPort');
    if (extra.virtualPort === virtualPort || !/^(127\.0\.0\.1:\d{1,5}|unix:\/\S+)$/.test(extra.target)) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', 'an extra onion port must be its own and local', {
        details: { virtualPort: extra.virtualPort, target: extra.target },
      });
    }
  }
  const entry: PublishedOnionEntry = {
    key,
    serviceId: key.serviceId,
    virtualPort,
    targetPort: options.targetPort,
    ...(options.extraPorts?.length ? { extraPorts: [...options.extraPorts] } : {}),
  };
  for (const other of tor.onions) {
    if (other.serviceId === entry.serviceId) {
      throw new MmogitError('ERR_TOR_ONION_PUBLISH', `onion ${key.onion} is already published on this tor`, {
        details: { serviceId: entry.serviceId },
      });
    }
  }
  const timings = await republishEntry(tor.controller, entry, options);
  tor.onions.add(entry);
  let removed = false;
  return {
    serviceId: entry.serviceId,
    onion: key.onion,
    virtualPort,
    targetPort: options.targetPort,
    publishMs: Date.now() - t0,
    ...timings,
    async remove(opts = {}) {
      if (removed) return;
      removed = true;
      tor.onions.delete(entry);
      if (!tor.running) return;
      try {
        await tor.controller.delOnion(entry.serviceId, opts);
      } catch (e) {
        // 552: already gone (tor restarted, or removed elsewhere); a closed connection took it with it.
        const code = (e as { code?: string }).code;
        if ((e as { statusCode?: number }).statusCode === 552 || code === 'ERR_TOR_CONTROL_CLOSED') return;
        throw e;
      }
    },
  };
}
