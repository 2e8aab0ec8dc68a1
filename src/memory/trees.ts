import { MmogitError } from '../errors.js';
import { encodeTree, MODE_FILE, MODE_TREE, parseTree, type TreeEntry } from './_git.js';
import { CostLru } from './_lru.js';
import { pacer } from './_pace.js';
import { makeObject, type ObjectDb, type StoredObject } from './odb.js';

/**
 * Tree algebra over the entry layout (`entries/<h0>/<h1>/<h2>/<id>.json`): read (cached: objects are
 * immutable), build (add files, rewriting only the trees on their paths), union (a merge never conflicts: a
 * file's name is the hash of its content), and the list of entry files a tree holds. New trees are returned in
 * an `out` list for the caller to store with its commit.
 * @module
 */

/** An entry file in a tree: its entry id (the file name without `.json`) and its blob id. */
export interface Leaf {
  id: string;
  blob: string;
}

/** A file to add: its path below the root tree, and its blob. */
export interface TreeFile {
  path: string[];
  oid: string;
}

/**
 * Tree entries the parse cache keeps, counted over all cached trees (a tree costs its entries + 1), least
 * recently used first out: ~150 bytes of heap an entry, so ~3 MB a store at most. What the cache is for is the
 * trees on the path a new entry rewrites (root, `entries/`, three fan-out levels) and the two sides of a
 * merge; a walk of the whole store reads each tree once, so it gains nothing from holding all of them, and
 * superseded trees (five per new entry) age out instead of growing the heap for the agent's lifetime.
 */
export const TREE_CACHE_ENTRIES = 20_000;

export class Trees {
  private readonly cache = new CostLru<string, TreeEntry[]>(TREE_CACHE_ENTRIES);

  constructor(private readonly odb: ObjectDb) {}

  /** Tree entries held by the parse cache now (bounded by {@link TREE_CACHE_ENTRIES}). */
  get cachedEntries(): number {
    return this.cache.cost;
  }

  /** A parsed tree (throws if absent or not a tree). */
  read(oid: string): TreeEntry[] {
    let t = this.cache.get(oid);
    if (!t) {
      t = parseTree(this.odb.readTyped(oid, 'tree'));
      this.cache.set(oid, t, t.length + 1);
    }
    return t;
  }

  /** Adds `files` to the tree `base` (null = empty); pushes the new trees on `out`; returns the new root. */
  build(base: string | null, files: readonly TreeFile[], out: StoredObject[]): string {
    const entries = new Map<string, TreeEntry>();
    if (base) for (const e of this.read(base)) entries.set(e.name, e);
    const groups = new Map<string, TreeFile[]>();
    for (const f of files) {
      const [name, ...rest] = f.path as [string, ...string[]];
      if (rest.length === 0) entries.set(name, { mode: MODE_FILE, name, oid: f.oid });
      else {
        const g = groups.get(name) ?? [];
        if (g.length === 0) groups.set(name, g);
        g.push({ path: rest, oid: f.oid });
      }
    }
    for (const [name, sub] of groups) {
      const existing = entries.get(name);
      const oid = this.build(existing?.mode === MODE_TREE ? existing.oid : null, sub, out);
      entries.set(name, { mode: MODE_TREE, name, oid });
    }
    return this.store([...entries.values()], out);
  }

  /**
   * The union of two trees of our layout; pushes the new trees on `out`. Throws ERR_SYNC if the same name holds
   * a file on one side and a tree or another file on the other, which verified trees cannot. Yields to the event
   * loop on large trees.
   */
  async union(a: string, b: string, out: StoredObject[], tick = pacer()): Promise<string> {
    if (a === b) return a;
    const entries = new Map<string, TreeEntry>();
    for (const e of this.read(a)) entries.set(e.name, e);
    let changed = false;
    for (const e of this.read(b)) {
      const mine = entries.get(e.name);
      if (!mine) {
        entries.set(e.name, e);
        changed = true;
      } else if (mine.oid !== e.oid) {
        if (mine.mode !== MODE_TREE || e.mode !== MODE_TREE) {
          throw new MmogitError('ERR_SYNC', `conflicting files named ${e.name}`, {
            details: { name: e.name },
          });
        }
        entries.set(e.name, { ...mine, oid: await this.union(mine.oid, e.oid, out, tick) });
        changed = true;
      }
      await tick();
    }
    return changed ? this.store([...entries.values()], out) : a;
  }

  /** Every entry file of the root tree `root` (files at depth 4 named `*.json`). */
  leaves(root: string): Leaf[] {
    const out: Leaf[] = [];
    const walk = (tree: string, depth: number) => {
      for (const e of this.read(tree)) {
        if (e.mode === MODE_TREE) walk(e.oid, depth + 1);
        else if (depth === 4 && e.name.endsWith('.json')) out.push({ id: e.name.slice(0, -5), blob: e.oid });
      }
    };
    walk(root, 0);
    return out;
  }

  /** The blob at `path` below the root tree `root`, or null when no file is there. Reads only the trees on it. */
  lookup(root: string, path: readonly string[]): string | null {
    let tree = root;
    for (let i = 0; i < path.length; i++) {
      const e = this.read(tree).find((t) => t.name === path[i]);
      if (!e) return null;
      const last = i === path.length - 1;
      if (last) return e.mode === MODE_TREE ? null : e.oid;
      if (e.mode !== MODE_TREE) return null;
      tree = e.oid;
    }
    return null;
  }

  private store(entries: TreeEntry[], out: StoredObject[]): string {
    const obj = makeObject('tree', encodeTree(entries));
    out.push(obj);
    // the parsed form, not `entries`: sorted as git stores it, and not shared with the caller
    const parsed = parseTree(obj.content);
    this.cache.set(obj.oid, parsed, parsed.length + 1);
    return obj.oid;
  }
}
