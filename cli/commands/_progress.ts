import { terminalSafe } from '../_terminal-safe.js';
import { endProgress, progress } from '../output.js';

/** A progress field (from tor, the daemon or a peer) as one escaped string. */
const t = (v: unknown): string => terminalSafe(String(v));

/**
 * Renders agent/daemon progress events on stderr (tor bootstrap %, onion publication, sync counts). Fields are
 * escaped one by one (a sync event names the peer; `progress()` escapes the whole line again).
 */
export function showProgress(progressEvent: object): void {
  // Any progress event type of the SDK: its fields are read by name and printed through t().
  const event: Record<string, unknown> = { ...progressEvent };
  switch (event.phase) {
    case 'tor':
      progress(`tor bootstrap ${t(event.progress)}% — ${t(event.summary ?? '')}`);
      if (event.progress === 100) endProgress();
      break;
    case 'onion':
      progress(`onion service: ${t(event.state)}${event.ms !== undefined ? ` (${t(event.ms)} ms)` : ''}`);
      break;
    case 'node':
      progress(`libp2p node listening on 127.0.0.1:${t(event.listenPort ?? '?')}`);
      break;
    case 'dht':
      progress(
        `DHT: ${t(event.state ?? '')} ${event.connected !== undefined ? `(${t(event.connected)} peers)` : ''}`,
      );
      break;
    case 'discover':
      progress(`discover ${t(event.service ?? '')}: querying the DHT…`);
      break;
    case 'found':
      progress(`found ${t(event.count)} agent(s)…`);
      break;
    case 'sync':
      progress(
        `sync ${t(event.peer ?? '')}: ${t(event.stage ?? '')} sent ${t(event.sent ?? 0)} / received ${t(event.received ?? 0)} objects`,
      );
      break;
    case 'ready':
      endProgress();
      break;
    default:
      progress(JSON.stringify(event));
  }
}
