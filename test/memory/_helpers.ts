import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { MemoryStore } from '../../src/memory/store.js';
import { type SyncOptions, type SyncResult, syncOverChannel } from '../../src/memory/sync/index.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';

/** Runs the real git binary in `dir` and returns stdout. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `git fsck --strict` exit status and output (0 = clean). */
export function fsck(dir: string): { status: number; output: string } {
  try {
    const output = execFileSync('git', ['-C', dir, 'fsck', '--strict', '--no-progress'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, output };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, output: `${err.stdout}${err.stderr}` };
  }
}

/** A fresh temp dir and its cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `mmogit-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * `open(name, key?)`: a store in a fresh temp dir named `<prefix>-<name>`; the dirs are removed after each test.
 * Call at the top level of a test file (it registers an `afterEach`).
 */
export function storeOpener(prefix: string): (name: string, key?: AgentKey) => Promise<MemoryStore> {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  return async (name, key = AgentKey.random()) => {
    const t = tempDir(`${prefix}-${name}`);
    cleanups.push(t.cleanup);
    return MemoryStore.open(join(t.dir, 'memory'), key);
  };
}

/** Two ends of a loopback TCP connection and a function that closes both and the server. */
export async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [sock] = await accepted;
  const done = () => {
    client.destroy();
    sock.destroy();
    server.close();
  };
  return [client, sock, done];
}

/** The sync peer description of a store's agent. */
export const peerOf = (s: MemoryStore) => ({ publicKey: s.key.publicKey, onion: s.key.onion });

/** Syncs `a` (initiator) with `b` (responder) over a loopback socket pair. */
export async function syncPair(
  a: MemoryStore,
  b: MemoryStore,
  options: Partial<SyncOptions> = {},
): Promise<[SyncResult, SyncResult]> {
  const [ca, cb, done] = await socketPair();
  try {
    return await Promise.all([
      syncOverChannel(a, channelFromDuplex(ca), { role: 'initiator', peer: peerOf(b), ...options }),
      syncOverChannel(b, channelFromDuplex(cb), { role: 'responder', peer: peerOf(a), ...options }),
    ]);
  } finally {
    done();
  }
}

/** The ids of every entry file on main, by real git. */
export function mainEntryIds(dir: string): string[] {
  let out = '';
  try {
    out = git(dir, 'ls-tree', '-r', '--name-only', 'main');
  } catch {
    return [];
  }
  return out
    .split('\n')
    .filter((l) => l.endsWith('.json'))
    .map((l) => (l.split('/').pop() as string).slice(0, -5))
    .sort();
}
