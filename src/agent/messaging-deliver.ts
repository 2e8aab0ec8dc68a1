/**
 * One delivery attempt of a signed message over the peer's link: dial when there is no link, send the `msg`
 * frame under the per-peer lock (the write only, so sends pipeline), wait for the reply and check the ack
 * (docs/protocol.md §5.7, §5.7.3). What to do when it fails is the send queue's business (messaging-send.ts).
 * @module
 */
import { MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { asMmogitError, remoteError } from './_errors.js';
import type { Connections } from './messaging-connections.js';
import { type SignedAck, verifyAck } from './messaging-envelope.js';
import { type AnySignedMessage, downgradeToV1 } from './messaging-envelope-v2.js';
import type { Link, LinkFrame, LinkTable } from './messaging-link.js';
import type { PeerLock } from './messaging-lock.js';

/** What {@link deliverOnLink} needs from the messenger. */
export interface DeliverDeps {
  key: AgentKey;
  links: LinkTable;
  lock: PeerLock;
  connections: Connections;
}

/**
 * Sends the signed message over the peer's link (in version 1 form on a version 1 link) and returns its
 * verified ack with the message as sent. A link whose write or reply fails is reset, so the next attempt opens a
 * new one.
 *
 * @throws `ERR_PEER_UNSUPPORTED` (a version 1 peer cannot represent the message: final), `ERR_BAD_SIGNATURE`
 *   (the ack does not verify), the peer's refusal (`details.remote`), or the link's error.
 */
export async function deliverOnLink(
  deps: DeliverDeps,
  signed: AnySignedMessage,
  signal: AbortSignal,
  onSent?: () => void,
): Promise<{ ack: SignedAck; sent: AnySignedMessage }> {
  const peer = signed.message.to;
  let sent = signed;
  // The lock covers the dial and the write only: messages go out in call order, and the next one is written
  // while this one waits for its ack (pipelining; docs/protocol.md §5.7.3).
  const { link, reply } = await deps.lock.run(peer, signal, async () => {
    const link: Link = deps.links.get(peer) ?? (await deps.connections.connect(peer, signal));
    // Throws ERR_PEER_UNSUPPORTED (final) when a version 1 peer cannot represent the message.
    if (link.version === 1 && signed.message.v === 2) sent = downgradeToV1(deps.key, signed.message);
    try {
      const { reply } = await link.dispatch(
        `msg:${signed.message.id}`,
        { t: 'msg', m: sent.message, sig: sent.sig },
        signal,
        onSent,
      );
      return { link, reply };
    } catch (e) {
      const err = asMmogitError(e);
      // The stream broke: start over with a new stream next time.
      void link.close(err, true);
      throw err;
    }
  });
  let frame: LinkFrame;
  try {
    frame = await reply;
  } catch (e) {
    const err = asMmogitError(e);
    // No reply in time, or the stream broke: start over with a new stream next time.
    void link.close(err, true);
    throw err;
  }
  if (frame.t === 'err') throw remoteError(frame, peer);
  if (frame.t !== 'ack') throw new MmogitError('ERR_BAD_FRAME', `expected an ack from ${peer}`);
  const ack: SignedAck = { ack: frame.a, sig: frame.sig };
  // Link.settle already matched the id; the signature and signer are checked here.
  if (ack.ack.by !== peer || ack.ack.id !== signed.message.id || !verifyAck(ack)) {
    const err = new MmogitError('ERR_BAD_SIGNATURE', `ack from ${peer} does not verify`, {
      details: { peer },
    });
    void deps.links.get(peer)?.close(err, true);
    throw err;
  }
  return { ack, sent };
}

/** The message format versions to speak, newest first; refuses an empty or unknown list. */
export function checkVersions(versions: readonly (1 | 2)[] | undefined): readonly (1 | 2)[] {
  if (versions === undefined) return [2, 1];
  const list = [...new Set(versions)].sort((a, b) => b - a);
  if (list.length === 0 || !list.every((v) => v === 1 || v === 2)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'messaging versions must be a non-empty subset of [2, 1]');
  }
  return list;
}
