/**
 * Test support (not shipped in src/): plain loopback libp2p agents (TCP on 127.0.0.1, noise, yamux, identify,
 * ping, our kad-dht) for the discovery tests and the loopback benchmark. No tor involved; the DHT logic is the
 * same as over onions.
 * @module
 */
import '../../src/_polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import { type KadDHTInit, kadDHT, type SingleKadDHT } from '@libp2p/kad-dht';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2pOptions } from 'libp2p';
import { bootstrapDialer } from '../../src/discovery/bootstrap.js';
import { dhtServiceOptions } from '../../src/discovery/dht.js';
import type { DiscoveryNode } from '../../src/discovery/discovery.js';
import { AgentKey } from '../../src/identity/index.js';
import { halfWindowYamux } from '../../src/transport/_yamux-window.js';

export interface LoopbackAgent {
  key: AgentKey;
  node: DiscoveryNode;
  /** `/ip4/127.0.0.1/tcp/<port>/p2p/<id>` */
  addr: string;
}

export interface LoopbackAgentOptions {
  init?: KadDHTInit;
  rawDht?: KadDHTInit;
  /** Another transport than TCP on 127.0.0.1 (the simulated one of sim-transport.ts); it must listen there. */
  transport?: Libp2pOptions['transports'] extends (infer T)[] | undefined ? T : never;
  /** Limits that replace the defaults below, one by one. */
  connectionManager?: Libp2pOptions['connectionManager'];
}

/**
 * Starts one loopback agent whose PeerId is `key` (a random key by default). `rawDht` replaces our DHT
 * options entirely (a stock node, or one with a permissive validator that plays a forger).
 */
export async function startLoopbackAgent(
  key: AgentKey = AgentKey.random(),
  options: LoopbackAgentOptions = {},
): Promise<LoopbackAgent> {
  const seed = key.exportSeed();
  const privateKey = await generateKeyPairFromSeed('Ed25519', seed);
  seed.fill(0);
  const node: DiscoveryNode = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [options.transport ?? tcp()],
    connectionEncrypters: [noise()],
    // the agents' own muxer rule (window updates at half the window), so loopback figures compare with theirs
    streamMuxers: [halfWindowYamux()],
    // Every inbound connection comes from 127.0.0.1: the per-IP defaults would refuse peers.
    connectionManager: {
      inboundConnectionThreshold: 10_000,
      maxIncomingPendingConnections: 1_000,
      maxConnections: 1_000,
      dialTimeout: 30_000,
      ...options.connectionManager,
    },
    // 50 nodes share one event loop: under load its pings time out and would abort healthy connections.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT(options.rawDht ?? dhtServiceOptions({ allowPrivateAddresses: true, init: options.init })),
    },
  });
  const tcpAddr = node.getMultiaddrs().find((m) => m.toString().startsWith('/ip4/127.0.0.1/tcp/'));
  if (tcpAddr === undefined) throw new Error('loopback agent has no TCP address');
  return { key, node, addr: tcpAddr.toString() };
}

/** Routing-table size of a node's DHT (kad-dht exposes it on the single-DHT service). */
export function routingTableSize(node: DiscoveryNode): number {
  const dht: Partial<SingleKadDHT> = node.services.dht;
  return dht.routingTable?.size ?? 0;
}

/**
 * Starts `n` loopback agents; the first `bootstraps` are the bootstrap agents every other one dials (with
 * `joinConcurrency` joins at a time: all nodes share one event loop). Resolves once every node joined.
 */
export async function startLoopbackNetwork(
  n: number,
  options: { bootstraps?: number; joinConcurrency?: number } = {},
): Promise<{ agents: LoopbackAgent[]; stop: () => Promise<void> }> {
  const agents = await Promise.all(Array.from({ length: n }, () => startLoopbackAgent()));
  const stop = async (): Promise<void> => {
    await Promise.all(agents.map((a) => a.node.stop()));
  };
  try {
    const boot = agents.slice(0, Math.max(1, options.bootstraps ?? 2)).map((a) => a.addr);
    const concurrency = options.joinConcurrency ?? 5;
    for (let i = 0; i < n; i += concurrency) {
      await Promise.all(
        agents.slice(i, i + concurrency).map(async (a) => {
          const r = await bootstrapDialer(a.node, boot, { retry: { attempts: 4, baseDelayMs: 200 } });
          if (r.connected.length === 0 && n > 1) throw new Error(`agent ${a.addr} could not join`);
        }),
      );
    }
    return { agents, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
