import { throwIfAborted } from '../../errors.js';
import { pacer } from '../_pace.js';
import { decodeBits, T } from './frames.js';
import { FIRST_HAVE_BATCH, MAX_HAVE_BATCH } from './limits.js';
import type { PhaseContext } from './types.js';

/**
 * Negotiation: which of our commits the peer lacks. The sender walks its history newest first and asks `HAVE`
 * in growing batches (16, 64, 256, 1024); the receiver answers from main's history only (so the answers reveal
 * nothing of the private branch or of objects outside main), and a commit it has implies all its ancestors.
 * @module
 */

interface Queued {
  oid: string;
  time: number;
  children: string[];
}

/** The commits reachable from `head` that the peer lacks, oldest first. */
export async function findMissing(ctx: PhaseContext, head: string): Promise<string[]> {
  const { port, wire } = ctx;
  const peerHas = new Set<string>();
  const missing: string[] = [];
  // Entries remember which children reached them: a commit is skipped once all those children are known to
  // the peer. Times order the walk only (our own history); correctness never depends on them.
  const first: Queued = { oid: head, time: port.readCommit(head).time, children: [] };
  const queue: Queued[] = [first];
  const queued = new Map<string, Queued>([[head, first]]);
  const tick = pacer();
  let batch = FIRST_HAVE_BATCH;
  while (queue.length > 0) {
    throwIfAborted(ctx.signal, 'memory sync');
    const ask: string[] = [];
    while (ask.length < batch && queue.length > 0) {
      // Newest first, so the boundary is found early.
      queue.sort((a, b) => a.time - b.time);
      const next = queue.pop() as Queued;
      if (next.children.length > 0 && next.children.every((c) => peerHas.has(c))) {
        peerHas.add(next.oid);
        continue;
      }
      ask.push(next.oid);
      for (const p of port.readCommit(next.oid).parents) {
        const q = queued.get(p);
        if (q) q.children.push(next.oid);
        else {
          const item = { oid: p, time: port.readCommit(p).time, children: [next.oid] };
          queued.set(p, item);
          queue.push(item);
        }
      }
      await tick();
    }
    if (ask.length === 0) break;
    await wire.send(T.have, { ids: ask });
    const has = decodeBits(await wire.expect(T.bits), ask.length);
    ask.forEach((oid, i) => {
      if (has(i)) peerHas.add(oid);
      else missing.push(oid);
    });
    batch = Math.min(batch * 4, MAX_HAVE_BATCH);
  }
  ctx.progress({ stage: 'negotiate', direction: 'send', commits: missing.length });
  // Oldest first: a commit's objects follow its parents', which keeps related trees close in the stream.
  return missing.reverse();
}

/** The receiver's BITS for a HAVE: bit i set iff ids[i] is a commit of main's history. */
export function answerHave(ids: readonly string[], main: ReadonlySet<string>): Uint8Array {
  const bits = new Uint8Array(Math.ceil(ids.length / 8));
  ids.forEach((id, i) => {
    if (main.has(id)) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
  });
  return bits;
}
