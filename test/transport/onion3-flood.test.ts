// A flood of half-open connections on the onion listener's local port (what tor forwards inbound onion streams
// to) must not pile abort listeners onto one long-lived AbortSignal: libp2p's upgrader adds one to the signal
// it gets for every upgrade in flight.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import { type AgentNode, createAgentNode } from '../../src/transport/node.js';

const FLOOD = 40;
let node: AgentNode | undefined;
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await node?.stop();
  node = undefined;
});

describe('onion listener under a connection flood', () => {
  it(`${FLOOD} half-open inbound connections raise no MaxListenersExceededWarning`, async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      node = await createAgentNode({ key: AgentKey.random(), policy: 'tor-only' });
      const port = node.listenPort as number;
      await Promise.all(
        Array.from(
          { length: FLOOD },
          () =>
            new Promise<void>((resolve, reject) => {
              const s = net.connect(port, '127.0.0.1', () => resolve());
              s.on('error', reject);
              sockets.push(s);
            }),
        ),
      );
      // Let the listener accept them all and start their upgrades (which then wait for bytes that never come).
      await new Promise((r) => setTimeout(r, 500));
      expect(warnings.map((w) => w.message)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
