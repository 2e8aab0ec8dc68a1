import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';

/**
 * Yamux window updates the way the reference implementation sends them.
 *
 * `@chainsafe/libp2p-yamux` 8 sends a WINDOW_UPDATE frame after *every* data frame it receives. Over an onion
 * service that small extra frame costs a whole delayed-ACK period: tor does not set TCP_NODELAY on the
 * connection it forwards to us, so a reply written right after the update waits ~40 ms for our ACK (measured in
 * bench/messaging.ts: a request/ack round trip went from ~2 ms to ~90 ms). hashicorp/yamux — the protocol's
 * reference (session.go, `sendWindowUpdate`) — only sends an update once at least half of the receive window
 * has been consumed, unless flags must go out; we make the JS stream do the same. Applied once, on import of
 * the agent node; nothing else in the stream changes.
 */
const STATE_ESTABLISHED = 3; // StreamState.Established in @chainsafe/libp2p-yamux/dist/src/stream.js

interface WindowState {
  state: number;
  recvWindow: number;
  recvWindowCapacity: number;
}

const proto = YamuxStream.prototype as unknown as {
  sendWindowUpdate: () => void;
  __mmogitHalfWindow?: boolean;
};
if (!proto.__mmogitHalfWindow) {
  const original = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function (this: WindowState) {
    const consumed = this.recvWindow - this.recvWindowCapacity;
    // Established streams carry no flags on a window update, so only the amount matters (SYN/ACK/FIN still go).
    if (this.state === STATE_ESTABLISHED && consumed < this.recvWindow / 2) return;
    original.call(this);
  };
  proto.__mmogitHalfWindow = true;
}
