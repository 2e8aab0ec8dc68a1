import { endProgress, progress } from '../output.js';

/** Renders agent/daemon progress events on stderr (tor bootstrap %, onion publication, sync counts). */
export function showProgress(event: Record<string, unknown>): void {
  switch (event.phase) {
    case 'tor':
      progress(`tor bootstrap ${event.progress}% — ${event.summary ?? ''}`);
      if (event.progress === 100) endProgress();
      break;
    case 'onion':
      progress(`onion service: ${event.state}${event.ms !== undefined ? ` (${event.ms} ms)` : ''}`);
      break;
    case 'node':
      progress(`libp2p node listening on 127.0.0.1:${event.listenPort ?? '?'}`);
      break;
    case 'dht':
      progress(
        `DHT: ${event.state ?? ''} ${event.connected !== undefined ? `(${event.connected} peers)` : ''}`,
      );
      break;
    case 'discover':
      progress(`discover ${event.service ?? ''}: querying the DHT…`);
      break;
    case 'found':
      progress(`found ${event.count} agent(s)…`);
      break;
    case 'sync':
      progress(
        `sync ${event.peer ?? ''}: ${event.stage ?? ''} sent ${event.sent ?? 0} / received ${event.received ?? 0} objects`,
      );
      break;
    case 'ready':
      endProgress();
      break;
    default:
      progress(JSON.stringify(event));
  }
}
