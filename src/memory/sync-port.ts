import type { AgentKey } from '../identity/keys.js';
import type { Commit, GitObject, TreeEntry } from './_git.js';
import type { CasStep } from './cas.js';
import type { StoredObject } from './odb.js';
import type { PackWriter } from './pack-writer.js';

/**
 * What the memory store lets the sync protocol do, and nothing more: read its public history, answer from
 * main only, receive a pack without holding it in memory, store union trees, and move main by compare-and-swap
 * in turn with the store's own writes. Sync never sees the store's caches, batching or private branch.
 * @module
 */
export interface SyncPort {
  /** The agent's identity (signs the refs it offers; its onion is the `from` of every statement). */
  readonly key: AgentKey;
  /** main's head, or null before the first public entry. */
  head(): string | null;
  /** Parsed commit of ours (throws if absent or not a commit). */
  readCommit(oid: string): Commit;
  /** Parsed tree of ours (cached). */
  readTree(oid: string): TreeEntry[];
  /** Any stored object, or null: what a peer's history references is re-verified from these bytes. */
  readObject(oid: string): GitObject | null;
  /** The commits of main's history, closed under ancestors: all a peer may learn we have. */
  mainHistory(): Promise<ReadonlySet<string>>;
  /** A pack of `count` objects, filled as they arrive and published by `finish()` (then visible to reads). */
  receivePack(count: number): ReceivedPack;
  /** Stores objects (skipping ones already present). */
  writeObjects(objects: readonly StoredObject[]): Promise<void>;
  /** The union of two trees of the entry layout; new trees are pushed on `out` (not stored). */
  unionTrees(a: string, b: string, out: StoredObject[]): Promise<string>;
  /** Moves main through {@link casRef}, after every earlier write of the store has landed. */
  updateMain<T>(step: (head: string | null) => CasStep<T> | Promise<CasStep<T>>): Promise<T>;
}

/** A pack being received (see {@link PackWriter}). */
export interface ReceivedPack {
  add: PackWriter['add'];
  readonly added: number;
  /** Resolves when the bytes added so far are written (backpressure); throws a write's error. */
  drain(): Promise<void>;
  /** Publishes the pack: its objects become readable. */
  finish(): Promise<void>;
  /** Drops it. Safe to call at any time, also after finish. */
  abort(): Promise<void>;
}
