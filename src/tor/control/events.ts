/**
 * Asynchronous events (control-spec §4.1), parsed from a declarative table of positional fields like stem's
 * `stem/response/events.py`. Pure functions.
 *
 * Real events from tor 0.4.9.11 (test/fixtures/tor-control/session-password-events.txt):
 * ```
 * 650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Connection refused" REASON=CONNECTREFUSED COUNT=15 RECOMMENDATION=warn HOSTID="BBBB…" HOSTADDR="127.0.0.1:1"
 * 650 STREAM 48 NEW 0 127.0.0.1.$BBBB….exit:1 PURPOSE=DIR_FETCH CLIENT_PROTOCOL=UNKNOWN NYM_EPOCH=0 SESSION_GROUP=-2 ISO_FIELDS=SESSION_GROUP
 * 650 HS_DESC UPLOADED <id> UNKNOWN $FP~nick
 * ```
 * @module
 */
import { splitArgs } from './_strings.js';
import { clip, TorControlError } from './errors.js';
import type { ControlReply } from './reply.js';

/** A STATUS_* event: `650 STATUS_CLIENT <severity> <action> [K=V …]` (control-spec §4.1.10). */
export interface StatusEvent {
  type: 'STATUS_CLIENT' | 'STATUS_GENERAL' | 'STATUS_SERVER';
  severity: string;
  action: string;
  args: Record<string, string>;
  raw: string;
}

/** `650 HS_DESC Action HSAddress AuthType HsDir [DescriptorID] [K=V …]` (control-spec §4.1.25). */
export interface HsDescEvent {
  type: 'HS_DESC';
  /** REQUESTED, UPLOAD, RECEIVED, UPLOADED, IGNORE, FAILED, CREATED */
  action: string;
  address: string;
  authType: string;
  hsDir?: string;
  descriptorId?: string;
  reason?: string;
  args: Record<string, string>;
  raw: string;
}

/** `650 CIRC CircuitID CircStatus [Path] [K=V …]` (control-spec §4.1.1). */
export interface CircEvent {
  type: 'CIRC';
  id: string;
  status: string;
  path?: string[];
  args: Record<string, string>;
  raw: string;
}

/** `650 STREAM StreamID StreamStatus CircuitID Target [K=V …]` (control-spec §4.1.2). */
export interface StreamEvent {
  type: 'STREAM';
  id: string;
  status: string;
  circuitId: string;
  target: string;
  args: Record<string, string>;
  raw: string;
}

/** Any other event, unparsed. */
export interface UnknownEvent {
  type: 'UNKNOWN';
  name: string;
  raw: string;
}

/** A parsed asynchronous event. Switch on `type`. */
export type TorEvent = StatusEvent | HsDescEvent | CircEvent | StreamEvent | UnknownEvent;

type Builder = (words: string[], kv: Record<string, string>, raw: string) => TorEvent;

// name → [required positional count, builder]
const TABLE: Record<string, [number, Builder]> = {
  STATUS_CLIENT: [2, (w, kv, raw) => status('STATUS_CLIENT', w, kv, raw)],
  STATUS_GENERAL: [2, (w, kv, raw) => status('STATUS_GENERAL', w, kv, raw)],
  STATUS_SERVER: [2, (w, kv, raw) => status('STATUS_SERVER', w, kv, raw)],
  HS_DESC: [
    4,
    ([action, address, authType, hsDir, descriptorId], kv, raw) => ({
      type: 'HS_DESC',
      action: action as string,
      address: address as string,
      authType: authType as string,
      ...(hsDir && hsDir !== 'UNKNOWN' ? { hsDir } : {}),
      ...(descriptorId ? { descriptorId } : {}),
      ...(kv.REASON ? { reason: kv.REASON } : {}),
      args: kv,
      raw,
    }),
  ],
  CIRC: [
    2,
    ([id, st, path], kv, raw) => ({
      type: 'CIRC',
      id: id as string,
      status: st as string,
      ...(path ? { path: path.split(',') } : {}),
      args: kv,
      raw,
    }),
  ],
  STREAM: [
    4,
    ([id, st, circuitId, target], kv, raw) => ({
      type: 'STREAM',
      id: id as string,
      status: st as string,
      circuitId: circuitId as string,
      target: target as string,
      args: kv,
      raw,
    }),
  ],
};

function status(
  type: StatusEvent['type'],
  w: string[],
  kv: Record<string, string>,
  raw: string,
): StatusEvent {
  return { type, severity: w[0] as string, action: w[1] as string, args: kv, raw };
}

/**
 * Parses a 650 reply into a {@link TorEvent}. Unknown event names give `{ type: 'UNKNOWN' }`; a known event
 * with too few fields throws `ERR_TOR_CONTROL_PROTOCOL` quoting the raw line.
 */
export function parseEvent(reply: ControlReply): TorEvent {
  const first = reply.lines[0];
  if (!first || reply.status !== 650) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'not an asynchronous event', {
      details: { raw: clip(reply.raw) },
    });
  }
  const sp = first.text.indexOf(' ');
  const name = sp === -1 ? first.text : first.text.slice(0, sp);
  const entry = TABLE[name];
  if (!entry || reply.lines.length > 1) return { type: 'UNKNOWN', name, raw: reply.raw };
  // Keys of keyword args are upper case in every event we parse; this keeps base64 ids positional.
  const { words, kv } = splitArgs(sp === -1 ? '' : first.text.slice(sp + 1), true);
  if (words.length < entry[0]) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', `${name} event with too few fields`, {
      details: { raw: clip(reply.raw) },
    });
  }
  return entry[1](words, kv, reply.raw);
}

/** The names of the events {@link parseEvent} parses into typed values. */
export const PARSED_EVENTS: readonly string[] = Object.freeze(Object.keys(TABLE));
