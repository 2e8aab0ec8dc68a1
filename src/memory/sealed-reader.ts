import type { KeyObject } from 'node:crypto';
import type { AgentKey } from '../identity/keys.js';
import { type Entry, verifyEntrySignature } from './entry.js';
import { isShareBody, type ShareBody } from './entry-kinds.js';
import { type OpenedEnvelope, openEnvelope, openerFor } from './sealed.js';

/**
 * The reading side of sharing, for recall: opens envelopes sealed to us and checks our share records, each
 * result cached by blob id (objects are immutable). The X25519 opener key is derived once, on first use.
 * @module
 */

/** Results kept at most; past it the cache starts over. */
const MAX_CACHED = 100_000;

export class SealedReader {
  private readonly cache = new Map<string, OpenedEnvelope | ShareBody | null>();
  private opener: KeyObject | null = null;

  constructor(private readonly key: AgentKey) {}

  /**
   * Opens an envelope sealed to us: checks its own signature, decrypts, and checks the inner entry (see
   * {@link openEnvelope}).
   */
  open(blob: string, envelope: Entry): OpenedEnvelope {
    const cached = this.cache.get(blob);
    if (cached && 'inner' in cached) return cached;
    let opened: OpenedEnvelope;
    if (!verifyEntrySignature(envelope)) opened = { inner: null, problem: 'bad signature' };
    else {
      this.opener ??= openerFor(this.key);
      opened = openEnvelope(this.key, this.opener, envelope);
    }
    if (this.cache.size > MAX_CACHED) this.cache.clear();
    this.cache.set(blob, opened);
    return opened;
  }

  /** A share record of ours whose signature verifies, else null. */
  share(blob: string, record: Entry): ShareBody | null {
    const cached = this.cache.get(blob);
    if (cached !== undefined && !(cached && 'inner' in cached)) return cached;
    const ok = record.author === this.key.publicKeyHex && verifyEntrySignature(record);
    const share = ok && isShareBody(record.body) ? record.body : null;
    if (this.cache.size > MAX_CACHED) this.cache.clear();
    this.cache.set(blob, share);
    return share;
  }
}
