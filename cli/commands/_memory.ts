import { Agent } from '../../src/agent/agent.js';
import type { MemoryStore, VerifiedEntry } from '../../src/memory/store.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import type { GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** Opens the agent's memory without the network stack. The store's ref updates are safe with a running daemon. */
export async function openMemory(args: GlobalOptions) {
  const agent = await Agent.open({ configDir: configDirOf(args) });
  return { agent, store: await agent.memory() };
}

/**
 * How many entries of the store cannot be read at all (corrupt or replaced object, not JSON, …). No filter can
 * place them (their kind and author are unknown), so a filtered recall leaves them out; this count is how the
 * CLI still tells the user that the store was tampered with. The filter is a kind no entry can have (kinds
 * start with a letter), which matches no readable entry, plus `includeUnreadable`, which adds every unreadable
 * one: no signature is checked and the decoded files are cached from the recall before, so it costs one walk.
 */
export async function unreadableCount(store: MemoryStore): Promise<number> {
  return (await store.recall({ kind: '-', includeUnreadable: true })).length;
}

/** "1 entry" / "3 entries". */
export function entries(n: number): string {
  return `${n} entr${n === 1 ? 'y' : 'ies'}`;
}

/** The JSON shape of a recalled entry: its fields flattened, plus `author` (onion) and `verified`. */
export function entryView(v: VerifiedEntry): Record<string, unknown> {
  return {
    id: v.id,
    kind: v.kind,
    author: v.author,
    createdAt: v.createdAt,
    visibility: v.visibility,
    verified: v.verified,
    ...(v.problem ? { problem: v.problem } : {}),
    ...(v.sharedWith ? { sharedWith: v.sharedWith } : {}),
    ...(v.entry ? v.entry.body : {}),
  };
}

/**
 * One line per entry for people. Every field comes from the store (possibly a peer's entry) and is escaped, so
 * no control character or line break in it reaches the terminal.
 */
export function entryLine(v: VerifiedEntry): string {
  const body = (v.entry?.body ?? {}) as Record<string, unknown>;
  const mark = v.verified ? '✓' : `✗ UNVERIFIED (${t(v.problem ?? 'bad entry')})`;
  if (!v.entry) return `${'?'.padEnd(24)}  ?            ${mark}  [unreadable entry ${t(v.id.slice(0, 16))}…]`;
  const what =
    v.kind === 'memory'
      ? `[${t(String(body.type))}] ${t(String(body.content))}${Array.isArray(body.tags) && body.tags.length ? `  #${body.tags.map((g) => t(String(g))).join(' #')}` : ''}`
      : v.kind === 'post'
        ? `[post] ${t(String(body.text))}`
        : v.kind === 'message'
          ? messageLine(body)
          : `[${t(v.kind)}]`;
  const shared = v.sharedWith;
  const note = shared?.length
    ? `  (private, shared with ${shared.length})`
    : v.visibility === 'private'
      ? '  (private)'
      : '';
  return `${t(v.createdAt)}  ${t(v.author.slice(0, 12))}…  ${mark}  ${what}${note}`;
}

/** A stored chat message (kind `message`): direction, peer and text. */
function messageLine(body: Record<string, unknown>): string {
  const m = (body.message ?? {}) as { from?: string; to?: string; text?: string };
  return body.direction === 'in'
    ? `[message from ${t(String(m.from).slice(0, 12))}…] ${t(String(m.text))}`
    : `[message to ${t(String(m.to).slice(0, 12))}…] ${t(String(m.text))}`;
}
