import { type Commit, encodeCommit, parseCommit } from './_git.js';
import { casRef } from './cas.js';
import { type EncodedEntry, entryPath } from './entry.js';
import { makeObject, type ObjectDb, type StoredObject } from './odb.js';
import type { Trees } from './trees.js';

/**
 * Commits as mmogit writes them, and the one way a batch of entries becomes a commit. Commit metadata carries
 * no authority (the entries' signatures do), so it is fixed: one identity, two message forms, one or two
 * parents, a time that never goes back along history. Sync refuses any other form (sync/verify.ts).
 * @module
 */

/** Identity line of every commit a store writes. */
export const COMMIT_IDENT = 'mmogit <mmogit@localhost>';
/** Message of the union merge sync writes. */
export const MERGE_MESSAGE = 'merge\n';
/** The only messages a commit may carry. */
export const COMMIT_MESSAGE_RE = /^(?:remember [1-9][0-9]{0,6} entr(?:y|ies)|merge)\n$/;

/** Message of a commit adding `n` entries. */
export function rememberMessage(n: number): string {
  return `remember ${n} entr${n === 1 ? 'y' : 'ies'}\n`;
}

/** Parsed commit (throws if absent or not a commit). */
export function readCommit(odb: ObjectDb, oid: string): Commit {
  return parseCommit(odb.readTyped(oid, 'commit'));
}

/** What a commit of entries needs from its store. */
export interface CommitTarget {
  dir: string;
  odb: ObjectDb;
  trees: Trees;
  /** The store's clock, ms. */
  now: () => number;
}

/**
 * Writes the entries' blobs, the trees on their paths and a commit on top of `ref`, then moves `ref` by
 * compare-and-swap (rebuilding on a concurrent writer's new head). Returns the commit id.
 */
export function commitEntries(
  target: CommitTarget,
  ref: string,
  entries: readonly EncodedEntry[],
): Promise<string> {
  const { odb, trees } = target;
  const blobs = entries.map((e) => makeObject('blob', e.bytes));
  const files = entries.map((e, i) => ({ path: entryPath(e.id), oid: (blobs[i] as StoredObject).oid }));
  return casRef(target.dir, ref, async (head) => {
    const parent = head ? readCommit(odb, head) : null;
    const objects: StoredObject[] = [...blobs];
    const tree = trees.build(parent?.tree ?? null, files, objects);
    const commit = makeObject(
      'commit',
      encodeCommit({
        tree,
        parents: head ? [head] : [],
        ident: COMMIT_IDENT,
        // Commit times never go backwards along history (a received commit is never older than its parents).
        time: Math.max(Math.floor(target.now() / 1000), parent?.time ?? 0),
        message: rememberMessage(entries.length),
      }),
    );
    objects.push(commit);
    await odb.write(objects);
    return { next: commit.oid, value: commit.oid };
  });
}
