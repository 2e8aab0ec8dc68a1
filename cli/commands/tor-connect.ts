import { callDaemon } from '../../src/agent/daemon.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';
import { resolvePeer } from './_peers.js';

interface ConnectResult {
  peer: { onion: string; pubkey: string };
  transport: string;
  suite: string;
  handshakeMs: number;
  rttMs: number;
}

/** `mmogit tor connect <peer>`: verified identity, transport, handshake and round-trip time. */
export default async function torConnect(args: GlobalOptions & { peer: string }): Promise<CommandResult> {
  const onion = await resolvePeer(args, args.peer); // bad input fails here, before the daemon
  const r = await callDaemon<ConnectResult>(configDirOf(args), 'connect', { onion }, { timeoutMs: 120_000 });
  if (r.transport === 'direct') {
    note(`warning: this connection does not use tor (${t(r.transport)}): the peer can see your IP address`);
  }
  return {
    data: { ...r, verified: true },
    human: [
      `connected to ${t(r.peer.onion)} (identity verified)`,
      `transport: ${t(r.transport)}   channel: ${t(r.suite)}`,
      `handshake: ${r.handshakeMs.toFixed(1)} ms   round trip: ${r.rttMs.toFixed(1)} ms`,
    ].join('\n'),
  };
}
