/**
 * Mesh wire constants (docs/protocol.md §8): link cell commands and body sizes, relay message commands, reasons,
 * windows and limits. Pure; no I/O.
 * @module
 */

/** Version of the mesh protocol (cells, handshake, relay messages). */
export const MESH_PROTOCOL_VERSION = 2;
/** libp2p protocol id of a mesh link to a relay's onion. */
export const MESH_PROTOCOL = '/mmogit/mesh/2.0.0';

// ── link cells (§8.2) ───────────────────────────────────────────────────────────────────────────────
export const CELL_HEADER_LEN = 5; // circ_id u32 ‖ command u8

export const CMD_PADDING = 0x00;
export const CMD_CREATE = 0x01;
export const CMD_CREATED = 0x02;
export const CMD_DESTROY = 0x03;
export const CMD_RELAY_128 = 0x04;
export const CMD_RELAY_2K = 0x05;
export const CMD_RELAY_16K = 0x06;
/** Bulk data only: a DATA cell that the stream fills to the brim (mesh protocol 2). */
export const CMD_RELAY_64K = 0x07;

/** Body length of each link command; an unknown command closes the link. */
export const BODY_LEN: Readonly<Record<number, number>> = Object.freeze({
  [CMD_PADDING]: 4,
  [CMD_CREATE]: 1217,
  [CMD_CREATED]: 1184,
  [CMD_DESTROY]: 1,
  [CMD_RELAY_128]: 128,
  [CMD_RELAY_2K]: 2048,
  [CMD_RELAY_16K]: 16384,
  // the largest multiple of 16 whose cell (5 + body) still fits one link payload, MAX_LINK_PAYLOAD
  [CMD_RELAY_64K]: 65520,
});

/** The four relay size classes, smallest first: [command, layered body length]. */
export const RELAY_CLASSES: readonly (readonly [number, number])[] = Object.freeze([
  [CMD_RELAY_128, 128],
  [CMD_RELAY_2K, 2048],
  [CMD_RELAY_16K, 16384],
  [CMD_RELAY_64K, 65520],
]);

export function isRelayCommand(cmd: number): boolean {
  return cmd === CMD_RELAY_128 || cmd === CMD_RELAY_2K || cmd === CMD_RELAY_16K || cmd === CMD_RELAY_64K;
}

/** Largest link payload: one PQ channel frame (docs/protocol.md §4.5). */
export const MAX_LINK_PAYLOAD = 65_535;

// ── layers and relay messages (§8.4, §8.5) ──────────────────────────────────────────────────────────
export const TAG_LEN = 16;
/** Bytes of zero that mark a plaintext as addressed to the hop that opened it. */
export const RECOGNIZED_LEN = 8;
/** recognized ‖ cmd u8 ‖ stream u16 ‖ length u16. */
export const MSG_HEADER_LEN = RECOGNIZED_LEN + 5;
/** Hops on a circuit: default and bounds. */
export const DEFAULT_HOPS = 3;
export const MIN_HOPS = 1;
export const MAX_HOPS = 5;
/** Tail reserved in every relay plaintext for filler (16 bytes per hop beyond the first, at most 4). */
export const FILLER_LEN = 16 * (MAX_HOPS - 1);

/** Largest `data` of a relay message in a body of `bodyLen` bytes: independent of the path length. */
export function messageCapacity(bodyLen: number): number {
  return bodyLen - TAG_LEN - MSG_HEADER_LEN - FILLER_LEN;
}

export const MSG_BEGIN = 1;
export const MSG_CONNECTED = 2;
export const MSG_DATA = 3;
export const MSG_END = 4;
export const MSG_SENDME = 5;
export const MSG_EXTEND = 6;
export const MSG_EXTENDED = 7;
export const MSG_TRUNCATED = 8;
export const MSG_BEACON = 9;
export const MSG_BEACON_ACK = 10;
export const MSG_LINK = 11;
export const MSG_LINKED = 12;
export const MSG_SWITCH = 13;
export const MSG_SWITCHED = 14;
export const MAX_MSG = MSG_SWITCHED;

// ── reasons (§8.7) ──────────────────────────────────────────────────────────────────────────────────
/** Why a circuit, hop or stream ended (DESTROY, TRUNCATED, END); the wire byte is the index. */
export const REASONS = [
  'done',
  'protocol',
  'link-lost',
  'timeout',
  'tampered',
  'resource-limit',
  'exit-policy',
  'unreachable',
  'closed',
  'hop-unreachable',
  'bad-handshake',
  'reset',
  // a neighbour's link declared silent (its socket may still be open): `link-lost` is a closed or failed one
  'link-timeout',
] as const;
export type Reason = (typeof REASONS)[number];

export function reasonByte(reason: Reason): number {
  return REASONS.indexOf(reason);
}

export function reasonOf(byte: number): Reason {
  return REASONS[byte] ?? 'protocol';
}

// ── windows and limits (§8.5, §8.6) ─────────────────────────────────────────────────────────────────
/** Unacknowledged bytes a stream sender may have in flight. */
export const STREAM_WINDOW = 4 * 1024 * 1024;
/** A stream receiver acknowledges once this many more bytes reached its application. */
export const STREAM_SENDME_BYTES = 512 * 1024;
/** DATA cells a leg may have in flight in each direction, and the increment of one circuit SENDME. */
export const CIRCUIT_WINDOW_CELLS = 512;
export const CIRCUIT_SENDME_CELLS = 32;
/**
 * What one DATA cell counts for in the circuit window, from its data length (offset included): a 64 KiB-class
 * cell counts as 4, every other as 1, so the window still bounds a leg's bytes in flight at ~8 MiB (512 × 16 KiB)
 * and a relay's per-circuit queue bound (twice that) holds; both ends compute it from the message alone.
 */
export function dataCellWeight(dataLen: number): number {
  return dataLen > messageCapacity(16384) ? 4 : 1;
}
/** Most streams in one set (so one SWITCH fits a 2 KiB cell). */
export const MAX_STREAMS_PER_SET = 128;
/** Bytes of one SWITCH entry: stream u16 ‖ flags u8 ‖ offset u64. */
export const SWITCH_ENTRY_LEN = 11;
/** Set bit of a SWITCH entry: this side has received the peer's END. */
export const SWITCH_FLAG_END = 0x01;
/** Relay cells per direction before a circuit must be rebuilt (nonces never repeat). */
export const MAX_CELLS_PER_DIRECTION = 2 ** 32;
export const MAX_CIRCUITS_PER_RELAY = 4096;
export const SET_NONCE_LEN = 32;

// ── timers ──────────────────────────────────────────────────────────────────────────────────────────
export const DEFAULT_BEACON_INTERVAL_MS = 500;
/** Link declared dead after this many intervals with nothing received (RFC 5880 detect multiplier). */
export const LINK_DEAD_INTERVALS = 3;
/** Consecutive beacons unanswered when the next is due before a leg is suspect. */
export const BEACON_MISSES_SUSPECT = 2;
/** A beacon to every hop (not only the exit) every this many intervals. */
export const HOP_PROBE_EVERY = 10;
export const HOP_BUILD_TIMEOUT_MS = 10_000;
export const BEGIN_TIMEOUT_MS = 10_000;
export const ONION_BEGIN_TIMEOUT_MS = 30_000;
/** How long an exit keeps a set whose legs all died, waiting for a SWITCH. */
export const SET_GRACE_MS = 30_000;
/** A link send that cannot drain in this long kills the link. */
export const LINK_SEND_TIMEOUT_MS = 30_000;
/** Link handshake deadline (TCP); onion links get the PQ default. */
export const LINK_HANDSHAKE_TIMEOUT_MS = 10_000;
