import { ContactBook } from '../../src/agent/contacts.js';
import type { GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** The onion a peer argument names: an onion address or a contact's alias (`ERR_UNKNOWN_CONTACT` if neither). */
export function resolvePeer(args: GlobalOptions, peer: string): Promise<string> {
  return new ContactBook(configDirOf(args)).resolve(peer);
}

/** {@link resolvePeer} for each of `peers`. */
export function resolvePeers(args: GlobalOptions, peers: readonly string[]): Promise<string[]> {
  const book = new ContactBook(configDirOf(args));
  return Promise.all(peers.map((p) => book.resolve(p)));
}
