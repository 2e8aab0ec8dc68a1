import { createInflateRaw, type InflateRaw } from 'node:zlib';
import { MmogitError } from '../../errors.js';
import type { ObjectType } from '../_git.js';
import { type PackInfo, protocolError, untrusted } from './frames.js';
import {
  MAX_BLOB_BYTES,
  MAX_COMMIT_BYTES,
  MAX_SYNC_OBJECTS,
  MAX_SYNC_RAW_BYTES,
  MAX_TREE_BYTES,
  OBJECT_HEADER_BYTES,
} from './limits.js';

/**
 * The receiving end of a pack stream: inflates PACK frames as they arrive, on the thread pool, and cuts the
 * output into objects. Nothing is inflated before the announced size passed {@link checkAnnounced}; the
 * inflater stops the moment its output passes the announced size (a decompression bomb costs us that much,
 * never more); each object's size is checked against its type's limit before its content is collected.
 * @module
 */

const CODE_OBJ: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob' };
const LIMIT: Record<ObjectType, number> = {
  commit: MAX_COMMIT_BYTES,
  tree: MAX_TREE_BYTES,
  blob: MAX_BLOB_BYTES,
};

/** Refuses an announcement no valid pack can match, before any work. */
export function checkAnnounced(info: PackInfo, maxRaw = MAX_SYNC_RAW_BYTES): void {
  if (info.objects > MAX_SYNC_OBJECTS) {
    throw new MmogitError('ERR_TOO_LARGE', `peer announced ${info.objects} objects`, {
      details: { objects: info.objects, limit: MAX_SYNC_OBJECTS },
    });
  }
  if (info.rawBytes > maxRaw) {
    throw new MmogitError('ERR_TOO_LARGE', `peer announced a pack of ${info.rawBytes} bytes`, {
      details: { rawBytes: info.rawBytes, limit: maxRaw },
    });
  }
  const least = info.objects * OBJECT_HEADER_BYTES;
  const most = info.objects * (OBJECT_HEADER_BYTES + MAX_TREE_BYTES);
  if (info.rawBytes < least) throw protocolError('pack-info does not add up');
  if (info.rawBytes > most) {
    throw new MmogitError('ERR_TOO_LARGE', 'peer announced objects larger than any object may be', {
      details: { rawBytes: info.rawBytes, objects: info.objects },
    });
  }
}

export class PackUnpacker {
  private readonly inflater: InflateRaw;
  private failure: Error | null = null;
  private failed!: (e: Error) => void;
  private readonly failedPromise: Promise<never>;
  /** Settles when the deflate stream ends, which may come before `end()` (a peer's stream may end early). */
  private readonly endedPromise: Promise<void>;
  private streamEnded = false;
  private inflated = 0;
  private count = 0;
  private header = new Uint8Array(OBJECT_HEADER_BYTES);
  private headerFill = 0;
  private type: ObjectType | null = null;
  private content: Uint8Array | null = null;
  private contentFill = 0;

  /** `onObject` runs for each complete object, in stream order; what it throws refuses the pack. */
  constructor(
    private readonly info: PackInfo,
    private readonly onObject: (type: ObjectType, content: Uint8Array) => void,
  ) {
    this.failedPromise = new Promise<never>((_, reject) => {
      this.failed = reject;
    });
    this.failedPromise.catch(() => {});
    this.inflater = createInflateRaw();
    this.endedPromise = new Promise<void>((resolve) => {
      this.inflater.once('end', () => {
        this.streamEnded = true;
        resolve();
      });
    });
    this.inflater.on('data', (chunk: Buffer) => {
      if (this.failure) return;
      try {
        this.consume(chunk);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    this.inflater.on('error', (e) => {
      this.fail(untrusted('pack is not a valid deflate stream', { reason: e.message }));
    });
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.failed(e);
    this.inflater.destroy();
  }

  private consume(chunk: Buffer): void {
    this.inflated += chunk.length;
    if (this.inflated > this.info.rawBytes) {
      throw new MmogitError('ERR_TOO_LARGE', 'pack expands beyond its announced size', {
        details: { announced: this.info.rawBytes },
      });
    }
    let at = 0;
    while (at < chunk.length) {
      if (!this.content) {
        const n = Math.min(OBJECT_HEADER_BYTES - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + n), this.headerFill);
        this.headerFill += n;
        at += n;
        if (this.headerFill < OBJECT_HEADER_BYTES) break;
        const type = CODE_OBJ[this.header[0] as number];
        if (!type) throw untrusted(`unknown object type ${this.header[0]}`);
        const size = new DataView(this.header.buffer).getUint32(1);
        if (size > LIMIT[type]) {
          throw new MmogitError('ERR_TOO_LARGE', `peer sent a ${size}-byte ${type}`, {
            details: { size, type, limit: LIMIT[type] },
          });
        }
        if (++this.count > this.info.objects) throw untrusted('pack holds more objects than it announced');
        this.type = type;
        this.content = new Uint8Array(size);
        this.contentFill = 0;
        this.headerFill = 0;
      }
      const content = this.content;
      const n = Math.min(content.length - this.contentFill, chunk.length - at);
      content.set(chunk.subarray(at, at + n), this.contentFill);
      this.contentFill += n;
      at += n;
      if (this.contentFill === content.length) {
        this.content = null;
        this.onObject(this.type as ObjectType, content);
      }
    }
  }

  /** Feeds one PACK frame; resolves once it is inflated and its objects handled. */
  async push(compressed: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.streamEnded) {
      this.fail(untrusted('pack data after the end of its deflate stream'));
      throw this.failure;
    }
    const written = new Promise<void>((resolve) => {
      this.inflater.write(compressed, () => resolve());
    });
    await Promise.race([written, this.failedPromise]);
    if (this.failure) throw this.failure;
  }

  /** Ends the stream: the pack must have been whole and exactly as announced. */
  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    // Listening for 'end' only now would miss a stream that already ended (and wait forever): use the promise
    // armed at construction.
    this.inflater.end();
    await Promise.race([this.endedPromise, this.failedPromise]);
    if (this.failure) throw this.failure;
    if (this.content || this.headerFill > 0) throw untrusted('truncated pack');
    if (this.count !== this.info.objects || this.inflated !== this.info.rawBytes) {
      throw untrusted('pack does not match its announcement', {
        objects: this.count,
        rawBytes: this.inflated,
      });
    }
  }

  /** Stops inflating (the sync failed elsewhere). */
  destroy(): void {
    this.failure ??= new MmogitError('ERR_ABORTED', 'pack stream abandoned');
    this.inflater.destroy();
  }
}
