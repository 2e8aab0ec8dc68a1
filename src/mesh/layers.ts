/**
 * Onion layers of relay cells (docs/protocol.md §8.4). Every relay body is `tag(16) ‖ ciphertext(M)`, sealed with
 * AES-256-GCM under one hop's key and its per-direction cell counter. Going out, a hop opens its layer and
 * forwards `plaintext ‖ 0^16`; coming back, a hop seals the first M bytes of what it received. The client
 * pre-computes the bytes a hop appends or drops from the hops' GCM key streams (the idea of Sphinx's filler), so
 * the body size never changes, every hop authenticates every byte, and no hop learns its position.
 * @module
 */
import { type Cipher, createCipheriv, createDecipheriv } from 'node:crypto';
import { counterNonce, wipe } from '../pqc/_primitives.js';
import { FILLER_LEN, MAX_CELLS_PER_DIRECTION, RECOGNIZED_LEN, TAG_LEN } from './_wire.js';

/** One direction of one hop: key and cell counter (the GCM nonce). */
export class LayerKey {
  #key: Uint8Array;
  #counter = 0;
  /**
   * AES-256-ECB under this key, made on the first {@link tailStream} and kept: ECB without padding turns each
   * 16-byte block of `update` into one block out and keeps no state between calls, so one context serves every
   * cell, where an AES-CTR cipher per call cost a context and a key schedule each (4 a round trip on 3 hops,
   * ~5 µs each on Node 24). Only the client computes tails.
   */
  #blocks: Cipher | null = null;

  /** Takes ownership of `key` (wiped by {@link destroy}). */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('AES-256-GCM key must be 32 bytes');
    this.#key = key;
  }

  /** Cells processed so far in this direction (the next nonce). */
  get counter(): number {
    return this.#counter;
  }

  /** Seals `plain` (M bytes) with the next counter: tag ‖ ciphertext. */
  seal(plain: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(plain.length + TAG_LEN);
    this.sealInto(plain, out, 0);
    return out;
  }

  /** Seals `plain` into `out` at `at` (tag ‖ ciphertext, M + 16 bytes): one copy, no concatenation. */
  sealInto(plain: Uint8Array, out: Buffer, at: number): void {
    const c = createCipheriv('aes-256-gcm', this.#key, counterNonce(this.#next()));
    const body = c.update(plain);
    c.final();
    c.getAuthTag().copy(out, at);
    body.copy(out, at + TAG_LEN);
  }

  /**
   * Seals the concatenation of `parts` (M bytes in all) with the next counter, part by part: writes the tag into
   * `head` at `tagAt` and returns `head` followed by one ciphertext part per non-empty part. The same bytes as
   * {@link seal} of the joined parts, but nothing is joined or copied: each GCM pass allocates its output
   * anyway (node:crypto has no in-place API), and a 16 KiB copy per cell on top of that was a third of the
   * buffers a relay allocated per cell, whose external-memory growth is what triggers V8's full collections.
   */
  sealParts(parts: readonly Uint8Array[], head: Buffer, tagAt: number): Buffer[] {
    const c = createCipheriv('aes-256-gcm', this.#key, counterNonce(this.#next()));
    const out: Buffer[] = [head];
    for (const p of parts) if (p.length > 0) out.push(c.update(p));
    c.final();
    c.getAuthTag().copy(head, tagAt);
    return out;
  }

  /**
   * Opens `body` (tag ‖ ciphertext) with the current counter and advances it only on success; null when the
   * cell was changed, replayed, reordered or sealed for another counter.
   */
  open(body: Uint8Array): Buffer | null {
    return this.tryOpen(body, true);
  }

  /** Like {@link open}; with `advance` false a failure or success leaves the counter where it was. */
  tryOpen(body: Uint8Array, advance: boolean): Buffer | null {
    if (body.length < TAG_LEN) return null;
    if (this.#counter >= MAX_CELLS_PER_DIRECTION) return null;
    const d = createDecipheriv('aes-256-gcm', this.#key, counterNonce(this.#counter));
    d.setAuthTag(body.subarray(0, TAG_LEN));
    const plain = d.update(body.subarray(TAG_LEN));
    try {
      d.final();
    } catch {
      plain.fill(0);
      return null;
    }
    if (advance) this.#counter++;
    return plain;
  }

  /**
   * {@link tryOpen} of `tag` ‖ the concatenation of `parts`, part by part (no joined copy): the plaintext as one
   * part per non-empty input part, or null (outputs wiped) when authentication fails. Never advances.
   */
  tryOpenParts(tag: Uint8Array, parts: readonly Uint8Array[]): Buffer[] | null {
    if (tag.length !== TAG_LEN || this.#counter >= MAX_CELLS_PER_DIRECTION) return null;
    const d = createDecipheriv('aes-256-gcm', this.#key, counterNonce(this.#counter));
    d.setAuthTag(tag);
    const plain: Buffer[] = [];
    for (const p of parts) if (p.length > 0) plain.push(d.update(p));
    try {
      d.final();
    } catch {
      for (const b of plain) b.fill(0);
      return null;
    }
    return plain;
  }

  /** Advances the counter by one (after a successful {@link tryOpen} with `advance` false). */
  advance(): void {
    this.#next();
  }

  /**
   * The last `len` bytes of the GCM key stream of the next cell, over a ciphertext of `m` bytes: GCM encrypts
   * plaintext block b with AES-CTR counter block `nonce ‖ (b + 2)` (NIST SP 800-38D §7.1, 96-bit IV).
   */
  tailStream(m: number, len: number): Buffer {
    // m and len are multiples of 16 (body sizes and filler are), so the tail starts on a block boundary
    const first = 2 + (m - len) / 16;
    const nonce = counterNonce(this.#counter);
    const counters = Buffer.allocUnsafe(len);
    for (let at = 0, b = first; at < len; at += 16, b++) {
      nonce.copy(counters, at);
      counters.writeUInt32BE(b, at + 12);
    }
    if (this.#counter >= MAX_CELLS_PER_DIRECTION)
      throw new RangeError('layer counter exhausted or key destroyed');
    this.#blocks ??= createCipheriv('aes-256-ecb', this.#key, null).setAutoPadding(false);
    return this.#blocks.update(counters);
  }

  /** Wipes the key; every later call fails. */
  destroy(): void {
    wipe(this.#key);
    this.#counter = MAX_CELLS_PER_DIRECTION;
    // final() frees the context, and with it OpenSSL's copy of the key schedule
    this.#blocks?.final();
    this.#blocks = null;
  }

  #next(): number {
    const n = this.#counter;
    if (n >= MAX_CELLS_PER_DIRECTION) throw new RangeError('layer counter exhausted or key destroyed');
    this.#counter = n + 1;
    return n;
  }
}

/** A hop's two keys: forward (towards the exit) and backward (towards the client). */
export interface HopLayers {
  forward: LayerKey;
  backward: LayerKey;
}

/** Whether a plaintext is addressed to the hop that opened it (its first 8 bytes are zero). */
export function isRecognized(plain: Uint8Array): boolean {
  for (let i = 0; i < RECOGNIZED_LEN; i++) if (plain[i] !== 0) return false;
  return true;
}

// ── relay side ──────────────────────────────────────────────────────────────────────────────────────

/** A relay opens its forward layer: the plaintext, or null on an authentication failure. */
export function relayOpenForward(hop: HopLayers, body: Uint8Array): Buffer | null {
  return hop.forward.open(body);
}

/** The body a relay forwards after opening its layer: plaintext ‖ 16 zero bytes (same size). */
export function forwardBody(plain: Uint8Array): Buffer {
  const out = Buffer.alloc(plain.length + TAG_LEN);
  out.set(plain, 0);
  return out;
}

/** `forwardBody` written straight into a link cell (`header` bytes reserved in front). */
export function forwardCell(plain: Uint8Array, header: number): Buffer {
  const out = Buffer.allocUnsafe(header + plain.length + TAG_LEN);
  out.set(plain, header);
  out.fill(0, header + plain.length);
  return out;
}

/** 16 zero bytes: the tail of every forwarded body, shared (only ever read: it is an input of GCM passes). */
const ZERO_TAIL = Buffer.alloc(TAG_LEN);

/**
 * The link cell a relay forwards after opening its layer, as parts (`head` ‖ plaintext ‖ 16 zero bytes): the
 * bytes of `head` ‖ {@link forwardBody}, without copying the plaintext into a new cell.
 */
export function forwardParts(head: Buffer, plain: Buffer): Buffer[] {
  return [head, plain, ZERO_TAIL];
}

/** A relay adds its backward layer to a body (L bytes) from its next hop: it seals the first M bytes. */
export function relaySealBackward(hop: HopLayers, body: Uint8Array): Buffer {
  return hop.backward.seal(body.subarray(0, body.length - TAG_LEN));
}

/** A relay seals a message it originates: `plain` is M bytes whose last {@link FILLER_LEN} are zero. */
export function relaySealOwn(hop: HopLayers, plain: Uint8Array): Buffer {
  return hop.backward.seal(plain);
}

// ── client side ─────────────────────────────────────────────────────────────────────────────────────

/** XOR of `b` into `a` at `at`. */
function xorInto(a: Uint8Array, at: number, b: Uint8Array, from: number, len: number): void {
  for (let i = 0; i < len; i++) a[at + i] = (a[at + i] as number) ^ (b[from + i] as number);
}

/**
 * Seals a message for hop `j` (1-based) of `hops`: `plain` is M bytes (its last 16·(j−1) bytes are overwritten
 * with filler). Advances the forward counters of hops 1..j.
 */
export function clientSealOut(
  hops: readonly HopLayers[],
  j: number,
  plain: Uint8Array,
  out?: { cell: Buffer; at: number },
): Buffer {
  const m = plain.length;
  const p = plain instanceof Buffer ? plain : Buffer.from(plain);
  // p_j[M−16(j−k) .. +16) = ⊕_{i=k+1..j} tail_i[16(k−1) .. 16k), tail_i = last 16(i−1) bytes of S_i
  for (let i = 2; i <= j; i++) {
    const tail = (hops[i - 1] as HopLayers).forward.tailStream(m, 16 * (i - 1));
    for (let k = 1; k < i; k++) xorInto(p, m - 16 * (j - k), tail, 16 * (k - 1), 16);
  }
  // inside out; the outermost layer goes straight into the caller's cell when it gives one
  const last = (k: number, input: Uint8Array): Buffer => {
    const key = (hops[k - 1] as HopLayers).forward;
    if (k === 1 && out) {
      key.sealInto(input, out.cell, out.at);
      return out.cell;
    }
    return key.seal(input);
  };
  let cell = last(j, p);
  for (let k = j - 1; k >= 1; k--) cell = last(k, cell.subarray(0, m));
  return cell;
}

/**
 * A message opened by the client: which hop sent it, and its plaintext's first part, which holds the message
 * header and data (the part after it is at most the filler region, see {@link clientOpenBack}); `length` is the
 * whole plaintext's (M): give both to `parseMessage`.
 */
export interface OpenedMessage {
  from: number;
  plain: Buffer;
  length: number;
}

/**
 * Opens a body that came back along `hops`. The sender is found by trying the exit first, then the nearest
 * hops (docs/protocol.md §8.4); counters of hops 1..sender advance only on success. Null when some layer fails
 * for every candidate: `failedAt` says which layer (1-based) did, so the caller can blame hops `failedAt − 1`
 * and `failedAt`.
 *
 * Layer k+1 opens `p_k ‖ x` (x: the 16 bytes the hops past k added, from their key streams) with the tag in its
 * first 16 bytes: its plaintext is kept as the parts GCM returns (`p_k` minus 16 bytes, then 16, then 16 …),
 * never joined. Its first part is M − 16·k bytes, so with at most MAX_HOPS (5) hops it holds everything
 * before the filler region (the last {@link FILLER_LEN} bytes), where a message's header and data end.
 */
export function clientOpenBack(
  hops: readonly HopLayers[],
  body: Uint8Array,
): OpenedMessage | { from: null; failedAt: number } {
  const n = hops.length;
  const m = body.length - TAG_LEN;
  const first = (hops[0] as HopLayers).backward.tryOpen(body, false);
  if (!first) return { from: null, failedAt: 1 };
  const plains: Buffer[][] = [[first]];
  const tails = new Map<number, Buffer>();
  const tailOf = (i: number): Buffer => {
    let t = tails.get(i);
    if (!t) {
      t = (hops[i - 1] as HopLayers).backward.tailStream(m, 16 * (i - 1));
      tails.set(i, t);
    }
    return t;
  };
  let sender: number | undefined = isRecognized(first) ? 1 : undefined;
  for (let k = 1; sender === undefined || k < sender; k++) {
    const pk = plains[k - 1] as Buffer[];
    if (sender === undefined && k === n) return { from: null, failedAt: n }; // last hop's plain not recognised
    const candidates =
      sender !== undefined ? [sender] : [n, ...Array.from({ length: n - k - 1 }, (_, x) => k + 1 + x)];
    const head = pk[0] as Buffer;
    let opened: Buffer[] | null = null;
    for (const j of candidates) {
      if (j <= k || j > n) continue;
      const x = Buffer.alloc(16);
      for (let i = k + 1; i <= j; i++) xorInto(x, 0, tailOf(i), 16 * (k - 1), 16);
      opened = (hops[k] as HopLayers).backward.tryOpenParts(head.subarray(0, TAG_LEN), [
        head.subarray(TAG_LEN),
        ...pk.slice(1),
        x,
      ]);
      if (opened) {
        if (j === k + 1 && !isRecognized(opened[0] as Buffer)) {
          opened = null; // right tail for j = k+1 but not addressed: impossible unless tampered
          continue;
        }
        sender = j;
        break;
      }
    }
    if (!opened) return { from: null, failedAt: k + 1 };
    plains.push(opened);
    if (sender === k + 1) break;
  }
  const from = sender as number;
  for (let i = 1; i <= from; i++) (hops[i - 1] as HopLayers).backward.advance();
  return { from, plain: (plains[from - 1] as Buffer[])[0] as Buffer, length: m };
}

export { FILLER_LEN };
