/**
 * Cooperative yielding for long synchronous loops (tree walks, verification of a received pack): the loop
 * calls the returned function at each step, and it gives the event loop a turn once `budgetMs` of work have
 * passed, so one peer's data never stalls the agent's other connections for longer than that.
 * @module
 */

/** Default slice of uninterrupted work. */
export const PACE_BUDGET_MS = 4;

export function pacer(budgetMs = PACE_BUDGET_MS): () => Promise<void> | undefined {
  let since = performance.now();
  return () => {
    if (performance.now() - since < budgetMs) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        since = performance.now();
        resolve();
      }),
    );
  };
}
