import { callDaemon } from '../../src/agent/daemon.js';
import type { PingReport } from '../../src/agent/runtime-types.js';
import { parseCount } from '../_numbers.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeer } from './_peers.js';

/** Most pings one command makes. */
const MAX_COUNT = { min: 1, max: 100 };

/**
 * `mmogit ping <peer> [--count N] [--fresh]` → `{"peer":{"onion","pubkey"},"transport","suite","handshakeMs",
 * "reused","rttsMs":[…],"rttMs":{"min","median","max"},"verified":true}`: round trips over one PQ session and the
 * route, as `tor connect` reports it.
 */
export default async function ping(
  args: GlobalOptions & { peer: string; count?: string; fresh?: boolean },
): Promise<CommandResult> {
  const count = args.count === undefined ? 4 : parseCount(args.count, 'count', MAX_COUNT);
  const onion = await resolvePeer(args, args.peer);
  const r = await callDaemon<PingReport>(
    configDirOf(args),
    'pingPeer',
    { onion, count, fresh: args.fresh === true },
    { timeoutMs: 120_000 + count * 30_000 },
  );
  if (r.transport === 'direct') {
    note(`warning: this connection does not use tor (${r.transport}): the peer can see your IP address`);
  }
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  return {
    data: { ...r, verified: true },
    human: [
      `${r.peer.onion} (identity verified) via ${r.transport}, ${r.suite}, session ${r.reused ? 'reused' : `new (handshake ${ms(r.handshakeMs)})`}`,
      ...r.rttsMs.map((x, i) => `  ping ${i + 1}: ${ms(x)}`),
      `round trip min ${ms(r.rttMs.min)} / median ${ms(r.rttMs.median)} / max ${ms(r.rttMs.max)}`,
    ].join('\n'),
  };
}
