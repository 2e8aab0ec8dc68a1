/**
 * The application's view of a stored or received message, whatever its format version.
 * @module
 */
import { MmogitError } from '../errors.js';
import { canonicalJson } from '../identity/canonical.js';
import type { AnyEnvelope } from './messaging-envelope-v2.js';
import type { ReceivedMessage } from './messaging-types.js';

/** A message as the application sees it; version 1 messages read as type `message` starting their own thread. */
export function toReceived(
  m: AnyEnvelope,
  verified: boolean,
  position?: { at: number; cursor: string },
): ReceivedMessage {
  const common = {
    id: m.id,
    from: m.from,
    timestamp: m.timestamp,
    verified,
    ...(position ? { receivedAt: position.at, cursor: position.cursor } : {}),
  };
  if (m.v === 1) {
    return { ...common, v: 1, type: 'message', text: m.text, body: m.text, thread: m.id };
  }
  return {
    ...common,
    v: 2,
    type: m.type,
    text: typeof m.body === 'string' ? m.body : canonicalJson(m.body),
    body: m.body,
    thread: m.thread,
    ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
    ...(m.meta !== undefined ? { meta: m.meta } : {}),
  };
}

/** True when `m` passes the `from`, `type` and `thread` filters (`from` already a canonical onion). */
export function matchesFilter(
  m: ReceivedMessage,
  filter: { from?: string | undefined; type?: string | undefined; thread?: string | undefined },
): boolean {
  return (
    (filter.from === undefined || m.from === filter.from) &&
    (filter.type === undefined || m.type === filter.type) &&
    (filter.thread === undefined || m.thread === filter.thread)
  );
}

/** A position in an agent's receive order: the receive time, and the id to break ties of older records. */
export interface CursorPosition {
  at: number;
  id: string;
}

const CURSOR_RE = /^m1\.(\d{1,16})\.([0-9a-f]{32})$/;

/** The cursor of the message `id` received at `at`: `m1.<at>.<id>` (treat it as opaque). */
export function encodeCursor(at: number, id: string): string {
  return `m1.${at}.${id}`;
}

/** Parses a cursor; `ERR_BAD_CURSOR` for anything that is not one. */
export function decodeCursor(cursor: string): CursorPosition {
  const m = CURSOR_RE.exec(cursor);
  const at = m ? Number(m[1]) : Number.NaN;
  if (!m || !Number.isSafeInteger(at)) {
    throw new MmogitError(
      'ERR_BAD_CURSOR',
      `"${cursor.slice(0, 80)}" is not an inbox cursor (m1.<time>.<id>)`,
      {
        details: { cursor: cursor.slice(0, 80) },
      },
    );
  }
  return { at, id: m[2] as string };
}

/** True when the message at `p` comes after `cursor` in receive order. */
export function isAfter(p: CursorPosition, cursor: CursorPosition): boolean {
  return p.at > cursor.at || (p.at === cursor.at && p.id > cursor.id);
}
