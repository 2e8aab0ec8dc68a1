/**
 * A local listener behind one of the onion's virtual ports (`ADD_ONION … Port=<virtual>,<target>`, control-spec
 * §3.27): a Unix socket of mode 0600 that only our own tor opens, or 127.0.0.1 when the tor is not ours (attach
 * mode: it may run as another user). Used by every extra port of an agent's onion (direct messaging, A2A).
 * @module
 */
import { chmod, rm } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';

/** Where such a listener binds. `port` defaults to any free one. */
export type OnionTargetListen = { path: string } | { host: '127.0.0.1'; port?: number };

/**
 * Binds `server` as `listen` says (a stale socket file at `path` is removed first; the new one is made 0600)
 * and returns the target a `Port=` line names: `unix:<path>` or `127.0.0.1:<port>`.
 */
export async function listenOnionTarget(server: Server, listen: OnionTargetListen): Promise<string> {
  if ('path' in listen) await rm(listen.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in listen) server.listen(listen.path, done);
    else server.listen(listen.port ?? 0, '127.0.0.1', done);
  });
  if (!('path' in listen)) return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  await chmod(listen.path, 0o600);
  return `unix:${listen.path}`;
}

/** Closes `server` (after the caller destroyed its sockets) and removes its socket file. */
export async function closeOnionTarget(server: Server, listen: OnionTargetListen): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
  if ('path' in listen) await rm(listen.path, { force: true });
}
