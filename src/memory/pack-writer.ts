import { createHash, type Hash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { MmogitError } from '../errors.js';
import { fsyncDir, writeAllAt, writeNewFile } from './_durable.js';
import type { GitObject, ObjectType } from './_git.js';

/**
 * Writes a version-2 pack and its version-2 index (Documentation/gitformat-pack.txt) one object at a time, so a
 * pack received from a peer is never held whole in memory. The pack grows in a `tmp_pack_*` file (a name git's
 * fsck and gc ignore); {@link PackWriter.finish} fsyncs it, renames it into place and writes the index last,
 * which is what makes the objects visible. {@link PackWriter.abort} leaves no trace.
 *
 * All file work is asynchronous and strictly sequential (one operation in flight): {@link PackWriter.add}
 * only compresses and buffers, and the buffer goes out in writes of {@link FLUSH_BYTES}. Sequential matters as
 * much as asynchronous: libuv's pool has four threads, and the message journal (the write an ack waits for)
 * shares them, so a background pack never holds more than one.
 * @module
 */

/** Buffered pack bytes that start a write (also the most a writer holds beyond the write in flight). */
export const FLUSH_BYTES = 1 << 20;

const TYPE_CODES: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };

interface Row {
  oid: string;
  offset: number;
  crc: number;
}

/** Pack object header: type and size as git's little-endian base-128 varint (gitformat-pack "Object entries"). */
function packObjectHeader(code: number, size: number): Uint8Array {
  const bytes: number[] = [];
  let c = (code << 4) | (size & 15);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(c);
  return Uint8Array.from(bytes);
}

export class PackWriter {
  private readonly tag = randomBytes(6).toString('hex');
  private readonly tmpPack: string;
  private readonly tmpIdx: string;
  private readonly hash: Hash = createHash('sha1');
  private readonly rows: Row[] = [];
  /** The temp file, created exclusively; null once closed. */
  private file: Promise<FileHandle> | null;
  /** Every write issued so far, in order; rejects with the first failure. */
  private io: Promise<void>;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes handed to writes so far (the file position of the next one). */
  private written = 0;
  private offset = 0;
  private done = false;

  /** Starts a pack of exactly `count` objects in `packDir` (`objects/pack`). */
  constructor(
    private readonly packDir: string,
    readonly count: number,
  ) {
    this.tmpPack = join(packDir, `tmp_pack_${this.tag}`);
    this.tmpIdx = join(packDir, `tmp_idx_${this.tag}`);
    this.file = mkdir(packDir, { recursive: true }).then(() => open(this.tmpPack, 'wx', 0o444));
    this.io = this.file.then(() => undefined);
    // A failure surfaces from drain(), finish() or abort(); until then it must not count as unhandled.
    this.io.catch(() => {});
    const header = Buffer.alloc(12);
    header.write('PACK', 0, 'latin1');
    header.writeUInt32BE(2, 4);
    header.writeUInt32BE(count, 8);
    this.append(header);
  }

  /** Objects added so far. */
  get added(): number {
    return this.rows.length;
  }

  private append(bytes: Uint8Array): void {
    this.hash.update(bytes);
    this.push(bytes);
  }

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.buffered += bytes.length;
    this.offset += bytes.length;
    if (this.buffered >= FLUSH_BYTES) this.flush();
  }

  /** Hands the buffered bytes to a write queued after the earlier ones. */
  private flush(): void {
    if (this.buffered === 0 || !this.file) return;
    const data = Buffer.concat(this.chunks, this.buffered);
    const at = this.written;
    const file = this.file;
    this.chunks = [];
    this.buffered = 0;
    this.written += data.length;
    this.io = this.io.then(async () => writeAllAt(await file, data, at));
    this.io.catch(() => {});
  }

  /** Appends one object (no delta). Synchronous: compresses and buffers; see {@link drain}. */
  add(o: GitObject & { oid: string }): void {
    if (this.done) throw new MmogitError('ERR_INTERNAL', 'pack writer already closed');
    if (this.rows.length >= this.count) {
      throw new MmogitError('ERR_INTERNAL', `pack announced ${this.count} objects, got more`);
    }
    const h = packObjectHeader(TYPE_CODES[o.type], o.content.length);
    const z = deflateSync(o.content, { level: 1 });
    this.rows.push({ oid: o.oid, offset: this.offset, crc: crc32(z, crc32(h)) });
    this.append(h);
    this.append(z);
  }

  /** Resolves when the writes issued so far have landed (backpressure for a caller adding fast); throws their error. */
  drain(): Promise<void> {
    return this.io;
  }

  /** Seals the pack and publishes it with its index. Resolves to the pack's name (its checksum, hex). */
  async finish(): Promise<string> {
    if (this.done) throw new MmogitError('ERR_INTERNAL', 'pack writer already closed');
    if (this.rows.length !== this.count) {
      throw new MmogitError('ERR_INTERNAL', `pack announced ${this.count} objects, got ${this.rows.length}`);
    }
    this.done = true;
    const checksum = this.hash.digest();
    this.push(checksum);
    this.flush();
    const name = checksum.toString('hex');
    try {
      await this.io;
      await (await (this.file as Promise<FileHandle>)).sync();
      await this.close();
      await writeNewFile(this.tmpIdx, encodeIdx(this.rows, checksum), true);
      await rename(this.tmpPack, join(this.packDir, `pack-${name}.pack`));
      // The index makes the pack visible to git and to us; it goes last.
      await rename(this.tmpIdx, join(this.packDir, `pack-${name}.idx`));
      await fsyncDir(this.packDir);
    } finally {
      await this.close().catch(() => {});
      await rm(this.tmpPack, { force: true });
      await rm(this.tmpIdx, { force: true });
    }
    return name;
  }

  /** Closes the temp file once the writes issued before have settled. */
  private async close(): Promise<void> {
    const file = this.file;
    if (!file) return;
    this.file = null;
    await this.io.catch(() => {});
    let fh: FileHandle;
    try {
      fh = await file;
    } catch {
      return; // never opened: nothing to close
    }
    await fh.close();
  }

  /** Drops the unfinished pack. Safe to call more than once, and after {@link finish}. */
  async abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    this.buffered = 0;
    await this.close().catch(() => {});
    await rm(this.tmpPack, { force: true });
    await rm(this.tmpIdx, { force: true });
  }
}

/** The version-2 index of a pack whose objects are `rows` and whose trailing checksum is `checksum`. */
function encodeIdx(unsorted: readonly Row[], checksum: Buffer): Buffer {
  const rows = [...unsorted].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const n = rows.length;
  const large = rows.filter((r) => r.offset >= 0x80000000);
  const idx = Buffer.alloc(8 + 1024 + n * 28 + large.length * 8 + 40);
  idx.writeUInt32BE(0xff744f63, 0);
  idx.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const r of rows) {
    const b = Number.parseInt(r.oid.slice(0, 2), 16);
    fanout[b] = (fanout[b] as number) + 1;
  }
  let cum = 0;
  for (let i = 0; i < 256; i++) {
    cum += fanout[i] as number;
    idx.writeUInt32BE(cum, 8 + i * 4);
  }
  let at = 8 + 1024;
  for (const r of rows) at += idx.write(r.oid, at, 'hex');
  for (const r of rows) at = idx.writeUInt32BE(r.crc >>> 0, at);
  let li = 0;
  for (const r of rows) {
    if (r.offset < 0x80000000) at = idx.writeUInt32BE(r.offset, at);
    else at = idx.writeUInt32BE((0x80000000 | li++) >>> 0, at);
  }
  for (const r of large) at = idx.writeBigUInt64BE(BigInt(r.offset), at);
  checksum.copy(idx, at);
  at += 20;
  createHash('sha1').update(idx.subarray(0, at)).digest().copy(idx, at);
  return idx;
}
