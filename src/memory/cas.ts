import { retry } from '../_async.js';
import { type ErrorCode, MmogitError } from '../errors.js';
import { readRef, updateRef } from './refs.js';

/**
 * The one compare-and-swap loop every ref move goes through (the store's commits, sync's integration): read
 * the ref, build the next value on it, swap it in only if the ref has not moved, else rebuild on the new value.
 * Another process on the same repository is the usual reason to retry (refs.ts holds the lock rules).
 * @module
 */

/** How often a move is rebuilt when another writer moved the ref in between. */
export const MAX_REF_RETRIES = 200;

/** Short jittered waits (writers on one machine): the first try and {@link MAX_REF_RETRIES} more. */
const CAS_RETRY = { attempts: MAX_REF_RETRIES + 1, baseDelayMs: 5, maxDelayMs: 25 } as const;

/** What one attempt decided: move the ref to `next`, or leave it as it is; `value` is returned either way. */
export type CasStep<T> = { next: string; value: T } | { next?: undefined; value: T };

/**
 * Runs `step(current head)` until its move lands (or it decides not to move). Throws `code` (default
 * ERR_INTERNAL) after {@link MAX_REF_RETRIES} lost races.
 */
export async function casRef<T>(
  gitdir: string,
  ref: string,
  step: (head: string | null) => CasStep<T> | Promise<CasStep<T>>,
  code: ErrorCode = 'ERR_INTERNAL',
): Promise<T> {
  // A lost race is the only retryable failure; an error from `step` ends the loop at once.
  const lost = new Error('lost the race for the ref');
  try {
    return await retry(
      async () => {
        const head = readRef(gitdir, ref);
        const r = await step(head);
        if (r.next === undefined || (await updateRef(gitdir, ref, r.next, head))) return r.value;
        throw lost;
      },
      CAS_RETRY,
      { retryable: (e) => e === lost, what: `update ${ref}` },
    );
  } catch (e) {
    if (e !== lost) throw e;
    throw new MmogitError(code, `could not update ${ref}: another writer keeps moving it`, {
      details: { ref },
    });
  }
}
