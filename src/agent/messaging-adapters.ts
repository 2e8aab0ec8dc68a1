/**
 * Adapters from the agent's real parts (the libp2p agent node, the PQ channel, the git-backed memory store) to
 * the narrow ports the {@link Messenger} needs.
 * @module
 */
import { hasCode, MmogitError } from '../errors.js';
import type { CanonicalValue } from '../identity/canonical.js';
import type { MemoryStore, VerifiedEntry } from '../memory/store.js';
import { peerIdFromOnion } from '../transport/addr.js';
import type { AgentNode } from '../transport/node.js';
import { channelFromStream } from '../transport/stream-channel.js';
import { JournaledMessageStore } from './messaging-journal.js';
import { knownOf, type MessageStore, parseStoredMessage, type StoredMessage } from './messaging-store.js';
import type { MessagingNode, MessagingTransportKind } from './messaging-types.js';

export { pqMessagingSecurity } from './messaging-pq.js';

/** Memory-store entry kind of sent and received messages. */
export const MESSAGE_ENTRY_KIND = 'message';

/** Options of {@link messagingNodeFromAgentNode}. */
export interface AgentNodeAdapterOptions {
  /**
   * Turns a peer's onion into the node's dial target (an onion, a multiaddr or a PeerId string). Default: the
   * onion itself, except under the `direct-only` policy, where it is the peer's PeerId so the node dials the
   * direct addresses its peer store knows (an onion target is refused there).
   */
  resolve?: (onion: string) => string | Promise<string>;
}

/**
 * The agent's libp2p node as the messenger's transport: streams become {@link ByteChannel}s, and the route a
 * stream took (tor, direct or mesh) is the one the node opened it on, else read from the node's connections.
 *
 * @example
 * const messenger = new Messenger({ node: messagingNodeFromAgentNode(node), key, store, outboxDir });
 */
export function messagingNodeFromAgentNode(
  node: AgentNode,
  options: AgentNodeAdapterOptions = {},
): MessagingNode {
  const resolve =
    options.resolve ??
    ((onion: string) => (node.policy === 'direct-only' ? peerIdFromOnion(onion).toString() : onion));
  const routeTo = (onion: string): MessagingTransportKind => {
    const conns = node.connections().filter((c) => c.onion === onion);
    // libp2p reuses an open connection for new streams; any open one to the peer is the route taken.
    if (conns.length > 0) return conns.every((c) => c.transport === 'direct') ? 'direct' : 'tor';
    return node.policy === 'direct-only' ? 'direct' : 'tor';
  };
  return {
    async dial(onion, protocol, options = {}) {
      let stream: Awaited<ReturnType<AgentNode['dialProtocol']>>;
      try {
        stream = await node.dialProtocol(
          await resolve(onion),
          protocol,
          options.signal ? { signal: options.signal } : {},
        );
      } catch (e) {
        throw unsupported(e, onion, protocol) ?? e;
      }
      return { channel: channelFromStream(stream), transport: node.routeOfStream(stream) ?? routeTo(onion) };
    },
    handle(protocol, handler) {
      return node.handle(protocol, (stream, remote) => {
        handler(channelFromStream(stream), { transport: remote.transport, remoteOnion: remote.onion });
      });
    },
    unhandle(protocol) {
      return node.unhandle(protocol);
    },
  };
}

/**
 * The node's "protocol not supported" answer (multistream-select `na`, libp2p's `UnsupportedProtocolError`)
 * as the messenger's `ERR_PEER_UNSUPPORTED`, which makes it try an older message protocol.
 */
function unsupported(e: unknown, onion: string, protocol: string): MmogitError | undefined {
  const cause: unknown = e instanceof Error ? e.cause : undefined;
  const named = (x: unknown) => x instanceof Error && x.name === 'UnsupportedProtocolError';
  if (!named(e) && !(hasCode(e, 'ERR_NOT_FOUND') && named(cause))) return undefined;
  return new MmogitError('ERR_PEER_UNSUPPORTED', `${onion} does not serve ${protocol}`, {
    cause: e,
    details: { peer: onion, protocol },
  });
}

/**
 * The agent's git-backed {@link MemoryStore} as the messenger's store: each sent or received message is one
 * private entry of kind `message` (never synced), signed by this agent and holding the sender's signed
 * envelope (and, for sent messages, the recipient's signed ack) so either can be re-verified later.
 *
 * With `journalPath` (recommended for agents: `<configDir>/messages.journal`), writes go through a
 * {@link JournaledMessageStore}: durable after one small fsync, copied into git in the background. That takes
 * the git commit (~15 ms here) off every message's round trip while keeping exactly-once across crashes. With
 * `indexPath` as well (agents: `<configDir>/messages.index`), every copied message is indexed, and a starting
 * messenger reads the index instead of every message entry (an entry's id is the hash of its bytes, and the
 * same record always signs to the same bytes, so appending a record the store holds changes nothing: what the
 * index's recovery needs).
 *
 * @example
 * const store = messageStoreFromMemory(await MemoryStore.open(join(configDir, 'memory'), key), {
 *   journalPath: join(configDir, 'messages.journal'),
 *   indexPath: join(configDir, 'messages.index'),
 * });
 */
export function messageStoreFromMemory(
  memory: MemoryStore,
  options: { journalPath?: string; indexPath?: string; onError?: (e: unknown) => void } = {},
): MessageStore {
  const git = gitMessageStore(memory);
  if (!options.journalPath) return git;
  return new JournaledMessageStore(
    git,
    options.journalPath,
    options.onError,
    options.indexPath === undefined ? {} : { indexPath: options.indexPath },
  );
}

/** A stored message as the memory entry's body (a canonical JSON object; no member is undefined). */
function canonicalRecord(r: StoredMessage): { [key: string]: CanonicalValue } {
  return {
    direction: r.direction,
    message: { ...r.message },
    sig: r.sig,
    at: r.at,
    ...(r.ack ? { ack: { ack: { ...r.ack.ack }, sig: r.ack.sig } } : {}),
  };
}

function gitMessageStore(memory: MemoryStore): MessageStore {
  /** The stored message of a recalled entry, if it is one this agent wrote itself. */
  const recordOf = (v: VerifiedEntry): StoredMessage | null => {
    const e = v.entry;
    // Only what this agent wrote itself counts (a synced branch could carry others' entries).
    if (!v.verified || !e || e.kind !== MESSAGE_ENTRY_KIND || e.author !== memory.key.publicKeyHex)
      return null;
    return parseStoredMessage(e.body);
  };
  /** Every stored message with its entry id, in storage order (recall is newest first). */
  const all = async (): Promise<{ record: StoredMessage; id: string }[]> => {
    const entries = await memory.recall({ kind: MESSAGE_ENTRY_KIND, includeUnverified: false });
    const out: { record: StoredMessage; id: string }[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const v = entries[i] as VerifiedEntry;
      const record = recordOf(v);
      if (record) out.push({ record, id: v.id });
    }
    return out;
  };
  return {
    async append(record: StoredMessage) {
      // The entry's id is its address: the index keeps it, and `read` finds the entry by it alone.
      const { id } = await memory.appendWithId(MESSAGE_ENTRY_KIND, canonicalRecord(record), {
        visibility: 'private',
        createdAt: new Date(record.at),
      });
      return id;
    },
    async list() {
      return (await all()).map((x) => x.record);
    },
    async listKnown() {
      return (await all()).map((x) => knownOf(x.record, x.id));
    },
    async read(known) {
      const ids: string[] = [];
      for (const k of known) {
        if (k.entry === undefined) return null;
        ids.push(k.entry);
      }
      const out: StoredMessage[] = [];
      for (const v of await memory.recallByIds(ids)) {
        const record = recordOf(v);
        if (record) out.push(record);
      }
      return out;
    },
  };
}
