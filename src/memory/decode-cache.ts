import { onionFromPublicKey } from '../identity/onion.js';
import { type DecodedEntry, decodeEntry } from './entry.js';
import type { ObjectDb } from './odb.js';
import type { Leaf } from './trees.js';

/**
 * What recall decodes again and again, kept by immutable id: entry files by blob id (decoded and checked but
 * for their signature, which recall verifies on every call), and onion addresses by public key.
 * @module
 */

/** A decoded entry file with its bytes (the signature check needs them). */
export interface DecodedFile {
  d: DecodedEntry;
  bytes: Uint8Array;
}

/** Entries kept at most; past it the cache starts over. */
const MAX_CACHED_ENTRIES = 200_000;

export class DecodeCache {
  private readonly entries = new Map<string, DecodedFile>();
  private readonly onions = new Map<string, string>();

  constructor(private readonly odb: ObjectDb) {}

  /** The entry file of `leaf`. A missing or corrupt object is reported like any failing entry, never thrown. */
  entry(leaf: Leaf): DecodedFile {
    let p = this.entries.get(leaf.blob);
    if (!p) {
      let bytes: Uint8Array;
      try {
        bytes = this.odb.readTyped(leaf.blob, 'blob');
      } catch (e) {
        const problem = `entry object is unreadable: ${(e as Error).message}`;
        return { d: { id: leaf.id, entry: null, verified: false, problem }, bytes: new Uint8Array(0) };
      }
      p = { d: decodeEntry(bytes, leaf.id, { checkSignature: false }), bytes };
      if (this.entries.size > MAX_CACHED_ENTRIES) this.entries.clear();
      this.entries.set(leaf.blob, p);
    }
    return p;
  }

  /** The onion address of a hex Ed25519 public key. */
  onion(hex: string): string {
    let o = this.onions.get(hex);
    if (!o) {
      o = onionFromPublicKey(Buffer.from(hex, 'hex'));
      this.onions.set(hex, o);
    }
    return o;
  }
}
