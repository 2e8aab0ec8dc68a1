/**
 * Recall by id: the entries named, read alone (the trees on each one's path and its blob), where a filtered
 * recall reads and decodes every entry file of both branches. For callers that keep their own index of the ids
 * they wrote (the messenger's message index), so reading a few of many stored entries costs O(few), not O(all).
 * @module
 */
import { verifyMany } from './_verify-pool.js';
import { type Entry, signatureItem, UNCHECKED } from './entry.js';
import type { RecallSource, VerifiedEntry } from './recall.js';
import { PRIVATE_REF, PUBLIC_REF } from './refs.js';

/** What a recall by id reads besides a recall's source: a branch's root tree, and an entry file's blob in one. */
export interface ByIdSource extends RecallSource {
  /** The root tree of `ref`'s head commit, or null before its first commit. */
  root(ref: string): string | null;
  /** The blob of the entry file `id` in the root tree `root`, or null. */
  blobIn(root: string, id: string): string | null;
}

const ID_RE = /^[0-9a-f]{64}$/;

/**
 * The entries `ids` of either branch, in the order asked, each signature verified on this call (in batches
 * across cores); an id that names no entry file, or is not an entry id, is left out. Entries that fail a check
 * come with `verified: false` and a `problem`, as in a recall. Envelopes are not opened and share records are
 * not consulted: `sharedWith` and `envelope` are never set.
 */
export async function recallByIds(src: ByIdSource, ids: readonly string[]): Promise<VerifiedEntry[]> {
  // Each branch's head is read once: a commit landing meanwhile is seen by the next call.
  const roots = [src.root(PRIVATE_REF), src.root(PUBLIC_REF)].filter((r): r is string => r !== null);
  const found = [];
  for (const id of ids) {
    if (!ID_RE.test(id)) continue;
    let blob: string | null = null;
    for (const root of roots) {
      blob = src.blobIn(root, id);
      if (blob !== null) break;
    }
    if (blob === null) continue;
    found.push(src.decode.entry({ id, blob }));
  }
  const checkable = found.filter((f) => f.d.entry && f.d.problem === UNCHECKED);
  const results = await verifyMany(checkable.map((f) => signatureItem(f.d.entry as Entry, f.bytes)));
  const ok = new Map(checkable.map((f, i) => [f, results[i] === true]));
  return found.map((f): VerifiedEntry => {
    const { d } = f;
    const verified = ok.has(f) ? ok.get(f) === true : d.verified;
    const problem = ok.has(f) ? (verified ? undefined : 'bad signature') : d.problem;
    const e = d.entry;
    return {
      id: d.id,
      entry: e,
      verified,
      ...(problem === undefined ? {} : { problem }),
      author: e ? src.decode.onion(e.author) : '',
      kind: e?.kind ?? '',
      createdAt: e?.createdAt ?? '',
      visibility: e?.visibility ?? 'public',
    };
  });
}
