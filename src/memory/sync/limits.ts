import { MAX_ENTRY_BYTES } from '../entry.js';

/**
 * Every bound of the sync protocol in one place (docs/protocol.md §3, Sync limits). A peer's data is checked
 * against these before work is done on it: sizes in a frame header before the payload is read, the announced
 * pack before a byte of it is inflated, each object's size before its content is collected.
 * @module
 */

export const DEFAULT_SYNC_TIMEOUT_MS = 120_000;
/** Largest compressed pack one sync may carry. */
export const MAX_SYNC_PACK_BYTES = 128 * 1024 * 1024;
/** Largest inflated pack one sync may announce (the inflater stops at the announced size). */
export const MAX_SYNC_RAW_BYTES = 256 * 1024 * 1024;
/** Most objects one pack may announce. */
export const MAX_SYNC_OBJECTS = 250_000;
/** Per-object limits by type. Commits are small and fixed in form; trees of our layout stay far below. */
export const MAX_COMMIT_BYTES = 4 * 1024;
export const MAX_TREE_BYTES = 1024 * 1024;
export const MAX_BLOB_BYTES = MAX_ENTRY_BYTES;
/** Object header in the pack stream: type(1) ‖ size(u32 BE). */
export const OBJECT_HEADER_BYTES = 5;
/** Compressed pack bytes per PACK frame. */
export const PACK_CHUNK_BYTES = 1024 * 1024;
/** Largest JSON control frame (a HAVE of 1,024 ids is ≈ 44 KiB). */
export const MAX_JSON_FRAME_BYTES = 64 * 1024;
export const FIRST_HAVE_BATCH = 16;
export const MAX_HAVE_BATCH = 1024;
/** Most parents a received commit may have (we write one, or two for a merge). */
export const MAX_PARENTS = 2;
/** How far in the future (by our clock) a received commit's time may be. */
export const MAX_COMMIT_CLOCK_SKEW_S = 24 * 3600;
/** Signatures checked per batch while a pack streams in. */
export const VERIFY_BATCH = 512;
