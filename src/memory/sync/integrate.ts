import { encodeCommit } from '../_git.js';
import { pacer } from '../_pace.js';
import { COMMIT_IDENT, MERGE_MESSAGE } from '../commits.js';
import { makeObject, type StoredObject } from '../odb.js';
import type { SyncPort } from '../sync-port.js';
import type { PhaseContext } from './types.js';

/**
 * Integration of a verified head into main. The result is always the union of our tree and theirs: nothing if
 * main already contains their commit; a fast-forward only if their tree already holds every entry of ours and
 * their history contains ours; otherwise the union merge. So no entry main holds can leave it through sync,
 * whatever history a peer offers (an empty tree on top of our head, a rewrite, a deletion: all merge back to
 * our entries plus theirs). The merge commit is a pure function of the two parents (sorted parents, union
 * tree, fixed ident, time = the later parent's, message `merge`), so both peers compute the same id.
 * @module
 */

type Mode = 'none' | 'fast-forward' | 'merge';

export async function integrate(ctx: PhaseContext, theirs: string | null): Promise<string | null> {
  const { port } = ctx;
  const { head, mode } = await port.updateMain<{ head: string | null; mode: Mode }>(async (ours) => {
    if (!theirs || ours === theirs) return { value: { head: ours, mode: 'none' } };
    const main = await port.mainHistory();
    if (ours && main.has(theirs)) return { value: { head: ours, mode: 'none' } };
    if (!ours) return { next: theirs, value: { head: theirs, mode: 'fast-forward' } };
    const a = port.readCommit(ours);
    const b = port.readCommit(theirs);
    const objects: StoredObject[] = [];
    const tree = await port.unionTrees(a.tree, b.tree, objects);
    if (tree === b.tree && (await descends(port, theirs, ours, main))) {
      return { next: theirs, value: { head: theirs, mode: 'fast-forward' } };
    }
    const parents = [ours, theirs].sort();
    const merge = makeObject(
      'commit',
      encodeCommit({
        tree,
        parents,
        ident: COMMIT_IDENT,
        time: Math.max(a.time, b.time),
        message: MERGE_MESSAGE,
      }),
    );
    objects.push(merge);
    await port.writeObjects(objects);
    return { next: merge.oid, value: { head: merge.oid, mode: 'merge' } };
  });
  ctx.progress({ stage: 'integrate', head, mode });
  return head;
}

/**
 * Does `from` have `ours` among its ancestors? Only the commits outside main (just received, and verified) are
 * walked: a main commit other than `ours` is an ancestor of it, so the walk stops there. Commit times, which a
 * peer chooses, play no part.
 */
async function descends(
  port: SyncPort,
  from: string,
  ours: string,
  main: ReadonlySet<string>,
): Promise<boolean> {
  const tick = pacer();
  const stack = [from];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const oid = stack.pop() as string;
    if (oid === ours) return true;
    if (seen.has(oid) || main.has(oid)) continue;
    seen.add(oid);
    stack.push(...port.readCommit(oid).parents);
    await tick();
  }
  return false;
}
