import { pacer } from './_pace.js';

/**
 * The set of commits in main's history, kept up to date as main moves. Sync asks it two questions a peer must
 * never get answered from the rest of the object store: "do you have this commit?" (the `have` query: only
 * commits of main, never the private branch's or unreferenced leftovers) and "is this parent already part of
 * our verified history?". The set is closed under ancestors, which is what negotiation relies on.
 *
 * Commit times are not used: they come from peers and only bound nothing here.
 * @module
 */
export class MainHistory {
  private head: string | null = null;
  private commits = new Set<string>();
  private refreshing: Promise<ReadonlySet<string>> | null = null;

  constructor(
    private readonly readHead: () => string | null,
    private readonly parentsOf: (commit: string) => readonly string[],
  ) {}

  /** The commits reachable from main's current head (empty before the first public commit). */
  async current(): Promise<ReadonlySet<string>> {
    while (this.refreshing) await this.refreshing;
    const head = this.readHead();
    if (head === this.head) return this.commits;
    this.refreshing = this.extend(head);
    try {
      return await this.refreshing;
    } finally {
      this.refreshing = null;
    }
  }

  /**
   * Adds what `head` reaches beyond the known set. If the walk never meets the previous head (the ref moved
   * back, or was rewritten by hand), the set is rebuilt from scratch so it never names a commit that left main.
   */
  private async extend(head: string | null): Promise<ReadonlySet<string>> {
    const previous = this.head;
    let set: Set<string> = this.commits;
    if (head === null) set = new Set();
    else {
      const { added, metPrevious } = await this.walk(head, set, previous);
      if (previous === null || metPrevious) for (const c of added) set.add(c);
      else set = new Set((await this.walk(head, new Set(), null)).added);
    }
    this.commits = set;
    this.head = head;
    return set;
  }

  /** The commits reachable from `head` that are not in `known` (the walk stops at known ones). */
  private async walk(
    head: string,
    known: ReadonlySet<string>,
    previous: string | null,
  ): Promise<{ added: string[]; metPrevious: boolean }> {
    const added: string[] = [];
    let metPrevious = false;
    const seen = new Set<string>();
    const stack = [head];
    const tick = pacer();
    while (stack.length > 0) {
      const oid = stack.pop() as string;
      if (seen.has(oid)) continue;
      seen.add(oid);
      if (known.has(oid)) {
        if (oid === previous) metPrevious = true;
        continue;
      }
      added.push(oid);
      stack.push(...this.parentsOf(oid));
      await tick();
    }
    return { added, metPrevious };
  }
}
