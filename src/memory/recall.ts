import type { AgentKey } from '../identity/keys.js';
import { verifyMany } from './_verify-pool.js';
import type { DecodeCache, DecodedFile } from './decode-cache.js';
import { type DecodedEntry, type Entry, signatureItem, UNCHECKED } from './entry.js';
import { type MemoryType, SEALED_KIND, SHARE_KIND, type Visibility } from './entry-kinds.js';
import { PRIVATE_REF, PUBLIC_REF } from './refs.js';
import type { SealedReader } from './sealed-reader.js';
import type { Leaf } from './trees.js';

/**
 * Recall: the entries of both branches that match a filter, newest first, each signature verified on the call
 * (in batches across cores), envelopes sealed to us opened, share records folded into `sharedWith`; and the
 * full check of every entry file. Entries that fail are reported, never dropped.
 * @module
 */

/** A recalled entry: `verified` is true only if the file passed every check, including its signature. */
export interface VerifiedEntry {
  id: string;
  entry: Entry | null;
  verified: boolean;
  problem?: string;
  /** The author's onion address ('' if the entry could not be parsed). */
  author: string;
  kind: string;
  createdAt: string;
  visibility: Visibility;
  /**
   * For a private entry shared with peers: on the author's side, the onions it was shared with; on a
   * recipient's side, its own onion (it was read from an envelope sealed to it).
   */
  sharedWith?: string[];
  /** Id of the `sealed` envelope a shared private entry was opened from (recipient side). */
  envelope?: string;
}

/** Filters for `MemoryStore.recall`; all given ones must match. */
export interface RecallFilter {
  kind?: string;
  /** Memory type (implies kind `memory`). */
  type?: MemoryType;
  tag?: string;
  /** Only entries created in the last N hours. */
  sinceHours?: number;
  /** Author's onion address or hex public key. */
  author?: string;
  visibility?: Visibility;
  /** Newest N. */
  limit?: number;
  /** Include memories whose `expiresAt` has passed (default false). */
  includeExpired?: boolean;
  /** Include entries that failed verification (default true: they are reported, flagged `verified: false`). */
  includeUnverified?: boolean;
  /**
   * Also return entries that cannot be read at all (corrupt or missing object, not JSON, …) whatever the other
   * filters say: their kind, tags and author are unknown, so no filter can place them (default false: only an
   * unfiltered recall shows them). They come flagged `verified: false` with a `problem`.
   */
  includeUnreadable?: boolean;
}

/** Result of `MemoryStore.check`. */
export interface StoreCheck {
  /** Entry files on both branches. */
  entries: number;
  /** Every one that fails any check (tampered, forged, unreadable), envelopes and share records included. */
  unverified: VerifiedEntry[];
}

/** What recall reads from its store. */
export interface RecallSource {
  key: AgentKey;
  /** The store's clock, ms. */
  now: () => number;
  /** The entry files of a branch (none before its first commit). */
  leaves(ref: string): Leaf[];
  decode: DecodeCache;
  sealed: SealedReader;
}

/**
 * Entries of both branches matching `filter`, newest first. Every returned entry's signature is checked on
 * this call; entries that fail any check are returned with `verified: false` and a `problem`.
 */
export async function recallEntries(src: RecallSource, filter: RecallFilter = {}): Promise<VerifiedEntry[]> {
  const now = src.now();
  const since = filter.sinceHours === undefined ? null : now - filter.sinceHours * 3_600_000;
  const authorHex =
    filter.author === undefined
      ? null
      : /^[0-9a-f]{64}$/.test(filter.author)
        ? filter.author
        : filter.author.toLowerCase();
  const kind = filter.type ? 'memory' : filter.kind;
  const seen = new Set<string>();
  const found: DecodedEntry[] = [];
  const bytesOf = new Map<DecodedEntry, Uint8Array>();
  const fromEnvelope = new Map<DecodedEntry, string>();
  const shares = new Map<string, Set<string>>();
  const me = src.key.publicKeyHex;
  for (const ref of [PUBLIC_REF, PRIVATE_REF]) {
    for (const leaf of src.leaves(ref)) {
      if (seen.has(leaf.id)) continue;
      seen.add(leaf.id);
      let { d, bytes } = src.decode.entry(leaf);
      let e = d.entry;
      // Envelopes and share records are plumbing: recall shows what they carry unless asked for by kind.
      if (e && d.problem === UNCHECKED && kind !== e.kind) {
        if (e.kind === SHARE_KIND) {
          const share = src.sealed.share(leaf.blob, e);
          if (share) {
            const set = shares.get(share.entry) ?? new Set<string>();
            for (const o of share.with) set.add(o);
            shares.set(share.entry, set);
          }
          continue;
        }
        if (e.kind === SEALED_KIND) {
          if ((e.body as { to?: unknown }).to !== me) continue;
          const opened = src.sealed.open(leaf.blob, e);
          if (opened.inner?.entry && !opened.problem) {
            if (seen.has(opened.inner.id)) continue;
            seen.add(opened.inner.id);
            d = opened.inner;
          } else {
            d = { id: d.id, entry: e, verified: false, problem: opened.problem ?? 'unreadable envelope' };
          }
          fromEnvelope.set(d, leaf.id);
          e = d.entry;
        }
      }
      bytesOf.set(d, bytes);
      if (!e) {
        const unfiltered = !kind && !filter.type && !filter.tag && !authorHex && !filter.visibility;
        if (filter.includeUnverified !== false && (unfiltered || filter.includeUnreadable === true)) {
          found.push(d);
        }
        continue;
      }
      if (kind && e.kind !== kind) continue;
      if (filter.visibility && e.visibility !== filter.visibility) continue;
      if (authorHex && e.author !== authorHex && src.decode.onion(e.author) !== authorHex) continue;
      if (since !== null && Date.parse(e.createdAt) < since) continue;
      const body = e.body as { type?: unknown; tags?: unknown; expiresAt?: unknown };
      if (filter.type && body.type !== filter.type) continue;
      if (filter.tag && !(Array.isArray(body.tags) && body.tags.includes(filter.tag))) continue;
      if (!filter.includeExpired && typeof body.expiresAt === 'string' && Date.parse(body.expiresAt) <= now) {
        continue;
      }
      found.push(d);
    }
  }
  found.sort((a, b) => {
    const ta = a.entry?.createdAt ?? '';
    const tb = b.entry?.createdAt ?? '';
    return ta < tb ? 1 : ta > tb ? -1 : a.id < b.id ? -1 : 1;
  });
  const out: VerifiedEntry[] = [];
  const limit = filter.limit ?? Number.POSITIVE_INFINITY;
  let next = 0;
  while (out.length < limit && next < found.length) {
    // Verify only what is returned, in batches across cores.
    const batch = found.slice(next, next + Math.min(limit - out.length, found.length));
    next += batch.length;
    const checkable = batch.filter((d) => d.entry && d.problem === UNCHECKED);
    const results = await verifyMany(checkable.map((d) => signatureItem(d.entry as Entry, bytesOf.get(d))));
    const ok = new Map(checkable.map((d, i) => [d, results[i] === true]));
    for (const d of batch) {
      const verified = ok.has(d) ? ok.get(d) === true : d.verified;
      const problem = ok.has(d) ? (verified ? undefined : 'bad signature') : d.problem;
      if (!verified && filter.includeUnverified === false) continue;
      if (out.length >= limit) break;
      const e = d.entry;
      const envelope = fromEnvelope.get(d);
      const sharedWith =
        envelope !== undefined && verified
          ? [src.key.onion]
          : e?.visibility === 'private' && e.author === me
            ? [...(shares.get(d.id) ?? [])].sort()
            : [];
      out.push({
        id: d.id,
        entry: e,
        verified,
        ...(problem === undefined ? {} : { problem }),
        author: e ? src.decode.onion(e.author) : '',
        kind: e?.kind ?? '',
        createdAt: e?.createdAt ?? '',
        visibility: e?.visibility ?? 'public',
        ...(sharedWith.length > 0 ? { sharedWith } : {}),
        ...(envelope === undefined ? {} : { envelope }),
      });
    }
  }
  return out;
}

/**
 * Checks every entry file of both branches, signatures included, and reports those that fail: how a user
 * learns that the store was tampered with, whatever filter a recall would have used.
 */
export async function checkEntries(src: RecallSource): Promise<StoreCheck> {
  const decoded: DecodedFile[] = [];
  const seen = new Set<string>();
  for (const ref of [PUBLIC_REF, PRIVATE_REF]) {
    for (const leaf of src.leaves(ref)) {
      if (seen.has(leaf.blob)) continue;
      seen.add(leaf.blob);
      decoded.push(src.decode.entry(leaf));
    }
  }
  const checkable = decoded.filter(({ d }) => d.entry && d.problem === UNCHECKED);
  const ok = await verifyMany(checkable.map(({ d, bytes }) => signatureItem(d.entry as Entry, bytes)));
  const good = new Set(checkable.filter((_, i) => ok[i]).map(({ d }) => d));
  const unverified = decoded
    .filter(({ d }) => !good.has(d))
    .map(({ d }) => {
      const e = d.entry;
      const problem = d.problem === UNCHECKED ? 'bad signature' : (d.problem ?? 'unknown problem');
      return {
        id: d.id,
        entry: e,
        verified: false,
        problem,
        author: e ? src.decode.onion(e.author) : '',
        kind: e?.kind ?? '',
        createdAt: e?.createdAt ?? '',
        visibility: e?.visibility ?? 'public',
      } satisfies VerifiedEntry;
    });
  return { entries: decoded.length, unverified };
}
