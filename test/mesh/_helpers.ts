import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { AgentKey } from '../../src/identity/keys.js';
import type { RelayInfo } from '../../src/mesh/circuit.js';
import { exitPolicyFrom } from '../../src/mesh/exit-policy.js';
import { Relay, type RelayOptions } from '../../src/mesh/relay.js';

/** In-process relays on 127.0.0.1 (each its own key and TCP listener). */
export async function startRelays(
  n: number,
  options: Partial<RelayOptions> & { exitTo?: string[] } = {},
): Promise<{ relays: Relay[]; infos: RelayInfo[]; close: () => Promise<void> }> {
  const relays: Relay[] = [];
  const infos: RelayInfo[] = [];
  for (let i = 0; i < n; i++) {
    const key = AgentKey.random();
    const relay = new Relay({ key, exitPolicy: exitPolicyFrom(options.exitTo ?? []), ...options });
    const addr = await relay.listen('127.0.0.1', 0);
    relays.push(relay);
    infos.push({ publicKey: key.publicKey, onion: key.onion, tcp: addr, exitPolicy: relay.policy });
  }
  return { relays, infos, close: async () => void (await Promise.all(relays.map((r) => r.close()))) };
}

/** A TCP server that sends `size` deterministic bytes to each client and echoes what it gets into a hash. */
export async function sinkSource(
  size: number,
): Promise<{ server: Server; port: number; sha256: string; received: string[] }> {
  const data = patternBytes(size);
  const received: string[] = [];
  const server = createServer((s) => {
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => received.push(h.digest('hex')));
    s.on('error', () => {});
    s.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, sha256: createHash('sha256').update(data).digest('hex'), received };
}

/** Deterministic bytes (so a hash mismatch is a real corruption, not randomness). */
export function patternBytes(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
