import { Agent } from '../../src/agent/agent.js';
import type { VerifiedEntry } from '../../src/memory/store.js';
import type { GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** Opens the agent's memory without the network stack. The store's ref updates are safe with a running daemon. */
export async function openMemory(args: GlobalOptions) {
  const agent = await Agent.open({ configDir: configDirOf(args) });
  return { agent, store: await agent.memory() };
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

/** One line per entry for people. */
export function entryLine(v: VerifiedEntry): string {
  const body = (v.entry?.body ?? {}) as Record<string, unknown>;
  const mark = v.verified ? '✓' : `✗ UNVERIFIED (${v.problem ?? 'bad entry'})`;
  const what =
    v.kind === 'memory'
      ? `[${String(body.type)}] ${String(body.content)}${Array.isArray(body.tags) && body.tags.length ? `  #${body.tags.join(' #')}` : ''}`
      : v.kind === 'post'
        ? `[post] ${String(body.text)}`
        : v.kind === 'message'
          ? messageLine(body)
          : `[${v.kind}]`;
  const shared = v.sharedWith;
  const note = shared?.length
    ? `  (private, shared with ${shared.length})`
    : v.visibility === 'private'
      ? '  (private)'
      : '';
  return `${v.createdAt}  ${v.author.slice(0, 12)}…  ${mark}  ${what}${note}`;
}

/** A stored chat message (kind `message`): direction, peer and text. */
function messageLine(body: Record<string, unknown>): string {
  const m = (body.message ?? {}) as { from?: string; to?: string; text?: string };
  return body.direction === 'in'
    ? `[message from ${String(m.from).slice(0, 12)}…] ${String(m.text)}`
    : `[message to ${String(m.to).slice(0, 12)}…] ${String(m.text)}`;
}
