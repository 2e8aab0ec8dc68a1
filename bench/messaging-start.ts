/**
 * What a restarted messenger reads before it serves again, with many messages stored: its seen set and thread
 * map from the message index (src/agent/messaging-index.ts), against the full listing of every stored message
 * that it read before (the anchor, measured in the same run on the same repository). Both start from a freshly
 * opened memory store (its caches empty; the OS page cache is warm in both).
 *
 * The messages are written the agent's way: a journal in front of the git store, copied in batches, indexed.
 * Run alone: `npx tsc -p tsconfig.json && node dist/bench/messaging-start.js [--messages N]`.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { messageStoreFromMemory } from '../src/agent/messaging-adapters.js';
import { signMessage } from '../src/agent/messaging-envelope.js';
import { inboxFromIndex } from '../src/agent/messaging-inbox.js';
import { knownOf, type MessageStore, type StoredMessage } from '../src/agent/messaging-store.js';
import { AgentKey } from '../src/identity/keys.js';
import { MemoryStore } from '../src/memory/store.js';
import { type BenchResult, median, round } from './_shared.js';
import type { BenchModule } from './_types.js';

const COMMAND = 'npx tsc -p tsconfig.json && node dist/bench/messaging-start.js';
/** Messages stored before the restart (the 98-kill run's inbox held 42,175). */
const DEFAULT_MESSAGES = 20_000;
/** Records appended together (one journal write, one git commit of the copy). */
const WAVE = 256;
/** Timed restarts of each kind. */
const ROUNDS = 3;

interface Setup {
  root: string;
  key: AgentKey;
  messages: number;
  close(): Promise<void>;
}

const paths = (root: string) => ({
  memory: join(root, 'memory'),
  journal: join(root, 'messages.journal'),
  index: join(root, 'messages.index'),
});

/** `n` messages from 8 peers, received through the journal, copied into git and indexed. */
async function build(n: number, signal?: AbortSignal): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), 'mmogit-bench-start-'));
  const key = AgentKey.random();
  const peers = Array.from({ length: 8 }, () => AgentKey.random());
  const p = paths(root);
  const memory = await MemoryStore.open(p.memory, key);
  const store = messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index });
  let at = Date.now() - n;
  try {
    for (let w = 0; w < n; w += WAVE) {
      signal?.throwIfAborted();
      const wave: StoredMessage[] = [];
      for (let i = w; i < Math.min(n, w + WAVE); i++) {
        const from = peers[i % peers.length] as AgentKey;
        wave.push({
          direction: 'in',
          ...signMessage(from, key.onion, `message ${i} of the backlog`),
          at: at++,
        });
      }
      await Promise.all(wave.map((r) => store.append(r)));
      await store.flush?.();
      if (w % (WAVE * 20) === 0)
        process.stderr.write(`[bench] messaging-start: stored ${w + wave.length}/${n}\n`);
    }
  } finally {
    await store.close?.();
    await memory.close();
  }
  return {
    root,
    key,
    messages: n,
    async close() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** One restart: open the memory store, read what the messenger needs; returns ms and the records' count. */
async function restart(s: Setup, how: 'index' | 'list'): Promise<{ ms: number; count: number }> {
  const p = paths(s.root);
  const t0 = performance.now();
  const memory = await MemoryStore.open(p.memory, s.key);
  try {
    let count: number;
    if (how === 'index') {
      const store = messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index });
      count = (await (store.known as NonNullable<MessageStore['known']>)()).length;
      const ms = performance.now() - t0;
      await store.close?.();
      return { ms, count };
    }
    count = (await messageStoreFromMemory(memory).list()).map((r) => knownOf(r)).length;
    return { ms: performance.now() - t0, count };
  } finally {
    await memory.close();
  }
}

/** The restart's read of what the messenger knows, from the index vs the full listing, ROUNDS times each. */
export async function benchStartIndexed(s: Setup, signal?: AbortSignal): Promise<BenchResult> {
  const ours: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    signal?.throwIfAborted();
    const a = await restart(s, 'list');
    const b = await restart(s, 'index');
    if (a.count !== s.messages || b.count !== s.messages) {
      throw new Error(`read ${a.count} (listing) and ${b.count} (index) of ${s.messages} stored messages`);
    }
    bare.push(a.ms);
    ours.push(b.ms);
  }
  const value = median(ours);
  const anchor = median(bare);
  return {
    name: `messenger start with ${s.messages.toLocaleString('en')} stored messages (index vs full listing)`,
    value: round(value, 1),
    unit: 'ms',
    anchor: round(anchor, 1),
    ratio: round(value / anchor, 4),
    command: COMMAND,
    notes: `median of ${ROUNDS}; index ${ours.map((x) => round(x, 0)).join(', ')} ms, listing ${bare.map((x) => round(x, 0)).join(', ')} ms (${round(anchor / s.messages, 3)} ms a message)`,
  };
}

/** `inbox --limit` of the inbox benchmark: a page of the newest, what an agent's loop asks for. */
const INBOX_LIMIT = 20;

/** One `inbox({ limit })` on a freshly opened memory store: through the index, or the full listing it replaced. */
async function inboxOnce(s: Setup, how: 'index' | 'list'): Promise<{ ms: number; count: number }> {
  const p = paths(s.root);
  const memory = await MemoryStore.open(p.memory, s.key);
  try {
    const t0 = performance.now();
    if (how === 'list') {
      // The old inbox's first step (it then also verified every listed message): a lower bound of its cost.
      const all = await messageStoreFromMemory(memory).list();
      return { ms: performance.now() - t0, count: Math.min(INBOX_LIMIT, all.length) };
    }
    const store = messageStoreFromMemory(memory, { journalPath: p.journal, indexPath: p.index });
    const reads = store as Required<Pick<MessageStore, 'known' | 'read'>>;
    const page = await inboxFromIndex(
      { known: () => reads.known(), read: (k) => reads.read(k) },
      { limit: INBOX_LIMIT, me: s.key.onion },
    );
    const ms = performance.now() - t0;
    await store.close?.();
    if (!page?.every((m) => m.verified)) throw new Error('the indexed inbox returned an unverified page');
    return { ms, count: page.length };
  } finally {
    await memory.close();
  }
}

/** `inbox({ limit: 20 })` through the index vs the full listing the inbox began with before, ROUNDS times each. */
export async function benchInboxIndexed(s: Setup, signal?: AbortSignal): Promise<BenchResult> {
  const ours: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    signal?.throwIfAborted();
    const a = await inboxOnce(s, 'list');
    const b = await inboxOnce(s, 'index');
    if (a.count !== INBOX_LIMIT || b.count !== INBOX_LIMIT) {
      throw new Error(`inbox pages of ${a.count} (listing) and ${b.count} (index), not ${INBOX_LIMIT}`);
    }
    bare.push(a.ms);
    ours.push(b.ms);
  }
  const value = median(ours);
  const anchor = median(bare);
  return {
    name: `inbox --limit ${INBOX_LIMIT} with ${s.messages.toLocaleString('en')} stored messages (index vs full listing)`,
    value: round(value, 1),
    unit: 'ms',
    anchor: round(anchor, 1),
    ratio: round(value / anchor, 4),
    command: COMMAND,
    notes: `median of ${ROUNDS}, fresh memory store each; index ${ours.map((x) => round(x, 0)).join(', ')} ms, listing ${bare.map((x) => round(x, 0)).join(', ')} ms; the anchor is only the listing the old inbox began with (it then verified every message too)`,
  };
}

export const bench: BenchModule<Setup> = {
  name: 'messaging-start',
  needsTor: false,
  timeoutMs: 600_000,
  setup: () => build(DEFAULT_MESSAGES),
  run: {
    benchStartIndexed: ({ setup, signal }) => benchStartIndexed(setup, signal),
    benchInboxIndexed: ({ setup, signal }) => benchInboxIndexed(setup, signal),
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--messages');
  const n = i >= 0 ? Number(process.argv[i + 1]) : DEFAULT_MESSAGES;
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write('--messages takes a whole number ≥ 1\n');
    process.exit(2);
  }
  const signal = AbortSignal.timeout(3_600_000);
  const s = await build(n, signal);
  try {
    console.log(JSON.stringify(await benchStartIndexed(s, signal)));
    console.log(JSON.stringify(await benchInboxIndexed(s, signal)));
  } finally {
    await s.close();
  }
}
