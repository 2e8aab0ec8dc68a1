import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { MmogitError } from '../errors.js';
import { writeNewFile } from './_durable.js';
import { type GitObject, hashObject, type ObjectType, objectHeader } from './_git.js';
import { CostLru } from './_lru.js';
import { PackWriter } from './pack-writer.js';

/**
 * The object database of one bare repository: loose objects (`objects/xx/…`, zlib of `<type> <size>\0<data>`)
 * and version-2 packs with their version-2 indexes (Documentation/gitformat-pack.txt), read and written with
 * Node's zlib and SHA-1 (the repository itself is made by _init-repo.ts). The hot path is here because isomorphic-git's
 * per-object cost (Web Streams compression, `crypto.subtle`, async fs) was 2–3 ms against ≈0.1 ms here
 * (docs/protocol.md §3 (Implementation)).
 *
 * Durability: every file appears by rename of a `tmp_obj_*` / `tmp_pack_*` file (names git's fsck ignores), so
 * a crash never leaves a half-written object; packs are fsynced before their index is renamed into place.
 * Writes are asynchronous and one at a time (see pack-writer.ts for why); reads stay synchronous.
 * @module
 */

/** An object with its id, ready to store. */
export interface StoredObject extends GitObject {
  oid: string;
}

/** Batches at least this large go into one pack file instead of loose files. */
export const PACK_THRESHOLD = 64;

const CODE_TYPES: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob' };
const OFS_DELTA = 6;
const REF_DELTA = 7;

interface PackFile {
  path: string;
}

/**
 * Bytes of pack files kept read into memory per repository, least recently used first out. Each background
 * git copy adds a pack, so keeping every pack read once would make the process's memory grow with the
 * repository for the agent's lifetime; this keeps the packs a read is working through (a pack bigger than it
 * is still kept, alone) and reads the others again when they are needed.
 */
export const PACK_CACHE_BYTES = 16 * 2 ** 20;

interface PackLocation {
  pack: PackFile;
  offset: number;
}

/** Builds an object (computes its id). */
export function makeObject(type: ObjectType, content: Uint8Array): StoredObject {
  return { type, content, oid: hashObject(type, content) };
}

export class ObjectDb {
  readonly gitdir: string;
  private readonly objectsDir: string;
  private readonly packIndex = new Map<string, PackLocation>();
  private readonly loadedIdx = new Set<string>();
  private readonly packData = new CostLru<string, Buffer>(PACK_CACHE_BYTES);

  constructor(gitdir: string) {
    this.gitdir = gitdir;
    this.objectsDir = join(gitdir, 'objects');
    this.scanPacks();
  }

  /** Bytes of pack files held in memory now (bounded by {@link PACK_CACHE_BYTES}). */
  get cachedPackBytes(): number {
    return this.packData.cost;
  }

  /** Loads indexes of packs that appeared since the last scan (another process, `git gc`). */
  scanPacks(): boolean {
    const dir = join(this.objectsDir, 'pack');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return false;
    }
    let added = false;
    for (const name of names) {
      if (!name.endsWith('.idx') || this.loadedIdx.has(name)) continue;
      const packPath = join(dir, `${name.slice(0, -4)}.pack`);
      if (!existsSync(packPath)) continue;
      const pack: PackFile = { path: packPath };
      for (const [oid, offset] of parseIdx(readFileSync(join(dir, name)))) {
        if (!this.packIndex.has(oid)) this.packIndex.set(oid, { pack, offset });
      }
      this.loadedIdx.add(name);
      added = true;
    }
    return added;
  }

  private loosePath(oid: string): string {
    return join(this.objectsDir, oid.slice(0, 2), oid.slice(2));
  }

  /** Is the object stored (loose or packed)? `rescan: false` skips looking for new packs. */
  has(oid: string, rescan = true): boolean {
    if (this.packIndex.has(oid) || existsSync(this.loosePath(oid))) return true;
    return rescan && this.scanPacks() && this.packIndex.has(oid);
  }

  /** Reads an object, or null if it is absent. */
  tryRead(oid: string): GitObject | null {
    const loc = this.packIndex.get(oid);
    if (loc) return this.readPacked(loc.pack, loc.offset);
    let raw: Buffer;
    try {
      raw = inflateSync(readFileSync(this.loosePath(oid)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw corrupt(oid, e);
      if (this.scanPacks() && this.packIndex.has(oid)) return this.tryRead(oid);
      return null;
    }
    const sp = raw.indexOf(0x20);
    const nul = raw.indexOf(0, sp);
    const type = raw.subarray(0, sp).toString('latin1');
    if (type !== 'blob' && type !== 'tree' && type !== 'commit') throw corrupt(oid);
    const content = new Uint8Array(raw.buffer, raw.byteOffset + nul + 1, raw.length - nul - 1);
    if (Number(raw.subarray(sp + 1, nul).toString('latin1')) !== content.length) throw corrupt(oid);
    return { type, content };
  }

  /** Reads an object; throws ERR_NOT_FOUND if absent. */
  read(oid: string): GitObject {
    const o = this.tryRead(oid);
    if (!o)
      throw new MmogitError('ERR_NOT_FOUND', `object ${oid} is not in the repository`, { details: { oid } });
    return o;
  }

  /** Reads an object and checks its type. */
  readTyped(oid: string, type: ObjectType): Uint8Array {
    const o = this.read(oid);
    if (o.type !== type) throw corrupt(oid, `expected a ${type}, found a ${o.type}`);
    return o.content;
  }

  private readPacked(pack: PackFile, offset: number): GitObject {
    let buf = this.packData.get(pack.path);
    if (!buf) {
      buf = readFileSync(pack.path);
      this.packData.set(pack.path, buf, buf.length);
    }
    let at = offset;
    let c = buf[at++] as number;
    const code = (c >> 4) & 7;
    let size = c & 15;
    let shift = 4;
    while (c & 0x80) {
      c = buf[at++] as number;
      size += (c & 0x7f) * 2 ** shift;
      shift += 7;
    }
    if (code === OFS_DELTA || code === REF_DELTA) {
      let base: GitObject;
      if (code === OFS_DELTA) {
        c = buf[at++] as number;
        let rel = c & 0x7f;
        while (c & 0x80) {
          c = buf[at++] as number;
          rel = (rel + 1) * 128 + (c & 0x7f);
        }
        base = this.readPacked(pack, offset - rel);
      } else {
        base = this.read(buf.subarray(at, at + 20).toString('hex'));
        at += 20;
      }
      const delta = inflateSync(buf.subarray(at, at + zlibBound(size)));
      return { type: base.type, content: applyDelta(base.content, delta) };
    }
    const type = CODE_TYPES[code];
    if (!type) throw corrupt(`${pack.path}@${offset}`, `unsupported pack object type ${code}`);
    // Bound the input by zlib's compressBound: inflating a subarray that runs to the end of a large pack is
    // several times slower than inflating just the object's bytes.
    const content = inflateSync(buf.subarray(at, at + zlibBound(size)));
    if (content.length !== size) throw corrupt(`${pack.path}@${offset}`, 'size mismatch');
    return { type, content: new Uint8Array(content.buffer, content.byteOffset, content.length) };
  }

  /**
   * Stores objects: one pack for a batch of {@link PACK_THRESHOLD} or more, loose files otherwise. Objects
   * already present are skipped. Returns when every object is in place (before any ref points at them).
   */
  async write(objects: readonly StoredObject[], options: { forcePack?: boolean } = {}): Promise<void> {
    this.scanPacks();
    const fresh = dedupe(objects).filter((o) => !this.has(o.oid, false));
    if (fresh.length === 0) return;
    if (options.forcePack || fresh.length >= PACK_THRESHOLD) await this.writePack(fresh);
    else for (const o of fresh) await this.writeLoose(o);
  }

  private async writeLoose(o: StoredObject): Promise<void> {
    const dir = join(this.objectsDir, o.oid.slice(0, 2));
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `tmp_obj_${randomBytes(6).toString('hex')}`);
    const header = objectHeader(o.type, o.content.length);
    const raw = Buffer.concat([header, o.content]);
    await writeNewFile(tmp, deflateSync(raw, { level: 1 }), false);
    await rename(tmp, this.loosePath(o.oid));
  }

  /** Writes `objects` as one pack + index (no deltas), fsynced, index renamed last. */
  async writePack(objects: readonly StoredObject[]): Promise<void> {
    const dir = join(this.objectsDir, 'pack');
    const w = new PackWriter(dir, objects.length);
    try {
      for (const o of objects) w.add(o);
      await w.finish();
    } finally {
      await w.abort();
    }
    this.scanPacks();
  }

  /** Starts a pack to be filled object by object (a pack received from a peer); see {@link PackWriter}. */
  packWriter(count: number): PackWriter {
    return new PackWriter(join(this.objectsDir, 'pack'), count);
  }
}

function corrupt(what: string, cause?: unknown): MmogitError {
  return new MmogitError('ERR_INVALID_MEMORY', `git object ${what} is corrupt`, {
    cause: typeof cause === 'string' ? new Error(cause) : cause,
    details: { object: what },
  });
}

function dedupe(objects: readonly StoredObject[]): StoredObject[] {
  const seen = new Set<string>();
  return objects.filter((o) => {
    if (seen.has(o.oid)) return false;
    seen.add(o.oid);
    return true;
  });
}

/** zlib's compressBound(): the most bytes deflate can produce for `n` input bytes. */
function zlibBound(n: number): number {
  return n + (n >>> 12) + (n >>> 14) + (n >>> 25) + 13 + 64;
}

/** Parses a v2 pack index into `[oid, offset]` pairs. */
function parseIdx(buf: Buffer): [string, number][] {
  if (buf.readUInt32BE(0) !== 0xff744f63 || buf.readUInt32BE(4) !== 2) {
    throw corrupt('pack index', 'not a version-2 pack index');
  }
  const n = buf.readUInt32BE(8 + 255 * 4);
  const shaAt = 8 + 1024;
  const offAt = shaAt + n * 24;
  const largeAt = offAt + n * 4;
  const out: [string, number][] = [];
  for (let i = 0; i < n; i++) {
    const oid = buf.toString('hex', shaAt + i * 20, shaAt + i * 20 + 20);
    let off = buf.readUInt32BE(offAt + i * 4);
    if (off & 0x80000000) off = Number(buf.readBigUInt64BE(largeAt + (off & 0x7fffffff) * 8));
    out.push([oid, off]);
  }
  return out;
}

/** Applies a git delta (gitformat-pack "Deltified representation") to `base`. */
export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let at = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    let c: number;
    do {
      c = delta[at++] as number;
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return v;
  };
  if (varint() !== base.length) throw corrupt('delta', 'base size mismatch');
  const out = new Uint8Array(varint());
  let w = 0;
  while (at < delta.length) {
    const op = delta[at++] as number;
    if (op & 0x80) {
      let off = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) off += (delta[at++] as number) * 2 ** (8 * i);
      for (let i = 0; i < 3; i++) if (op & (16 << i)) size += (delta[at++] as number) * 2 ** (8 * i);
      if (size === 0) size = 0x10000;
      if (off + size > base.length || w + size > out.length) throw corrupt('delta', 'copy out of range');
      out.set(base.subarray(off, off + size), w);
      w += size;
    } else if (op > 0) {
      if (w + op > out.length || at + op > delta.length) throw corrupt('delta', 'insert out of range');
      out.set(delta.subarray(at, at + op), w);
      at += op;
      w += op;
    } else {
      throw corrupt('delta', 'reserved opcode 0');
    }
  }
  if (w !== out.length) throw corrupt('delta', 'result size mismatch');
  return out;
}

/** Size of a file, or -1. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}
