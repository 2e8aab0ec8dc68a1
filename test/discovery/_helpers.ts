// Helpers the discovery tests share: forged records, draining async iterables, polling.
import type { KadDHTInit } from '@libp2p/kad-dht';
import { type Advertisement, advertisementSigningBytes, DHT_PROTOCOL } from '../../src/discovery/index.js';
import { type AgentKey, canonicalBytes, SIGNING_CONTEXTS } from '../../src/identity/index.js';

/** A forger's DHT: our protocol, but a validator that accepts anything, so it can try to PUT bad records. */
export const FORGER_DHT: KadDHTInit = {
  protocol: DHT_PROTOCOL,
  clientMode: false,
  allowQueryWithZeroPeers: true,
  validators: { mmogit: () => {} },
  selectors: { mmogit: () => 0 },
};

/** Re-signs a modified body with `key`: a forged record that is correctly signed by someone. */
export function resign(key: AgentKey, body: Omit<Advertisement, 'signature'>): Uint8Array {
  const sig = key.sign(SIGNING_CONTEXTS.advertisement, advertisementSigningBytes(body));
  return canonicalBytes({ ...body, signature: Buffer.from(sig).toString('hex') } as never);
}

/** Every item of `it`, in order. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Polls `cond` every 100 ms until it holds; throws after `ms`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
