// File-transfer test plumbing: a file service on a loopback test agent (real PQ sessions over real 127.0.0.1
// sockets), a seeded file of a given size, and a hand-driven sender for what an honest sender never does.
import { createCipheriv, createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileService, startFileService } from '../../src/agent/files-service.js';
import { FILE_PROTOCOL, MAX_FILE_RECORD_BYTES } from '../../src/agent/files-wire.js';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_SKEW_MS } from '../../src/agent/messaging.js';
import type { MmogitError } from '../../src/errors.js';
import type { AgentKey } from '../../src/identity/keys.js';
import { initiateSession } from '../../src/pqc/handshake.js';
import type { SecureSession } from '../../src/pqc/session.js';
import type { ByteChannel } from '../../src/transport/byte-channel.js';
import type { TestAgent } from './messaging-helpers.js';

/**
 * Starts a file service on `a` (its messenger lists stored files); errors it reports go to `errors`, its file
 * outbox events (`file-resumed <id> …`) to `events`.
 */
export async function withFiles(
  a: TestAgent,
  opts: {
    maxFileBytes?: number;
    errors?: MmogitError[];
    retry?: { initialDelayMs?: number; maxDelayMs?: number };
    events?: string[];
    partialMaxAgeMs?: number;
  } = {},
): Promise<FileService> {
  return startFileService({
    node: a.node,
    key: a.key,
    configDir: a.home,
    allowClassical: false,
    ...(opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {}),
    maxFutureSkewMs: DEFAULT_MAX_FUTURE_SKEW_MS,
    maxAgeMs: DEFAULT_MAX_AGE_MS,
    list: (offer) => a.messenger.storeVerified(offer),
    fail: (e) => opts.errors?.push(e),
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.partialMaxAgeMs !== undefined ? { partialMaxAgeMs: opts.partialMaxAgeMs } : {}),
    ...(opts.events
      ? { event: (kind: string, detail: string) => opts.events?.push(`${kind} ${detail}`) }
      : {}),
  });
}

/**
 * Writes `size` bytes of an AES-256-CTR keystream under a key derived from `seed` (the same content on every
 * run, fast enough for 50 MB) to `dir/name`; returns the path and its sha256.
 */
export async function seededFile(
  dir: string,
  name: string,
  size: number,
  seed = 1,
): Promise<{ path: string; sha256: string }> {
  const key = createHash('sha256').update(`mmogit-test-file/${seed}`).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const buf = Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
  const path = join(dir, name);
  await writeFile(path, buf);
  return { path, sha256: createHash('sha256').update(buf).digest('hex') };
}

/** A raw PQ session to `to`'s file protocol, driven by the test. */
export async function rawFileSession(
  from: TestAgent,
  to: AgentKey,
): Promise<{ session: SecureSession; channel: ByteChannel }> {
  const { channel } = await from.node.dial(to.onion, FILE_PROTOCOL);
  const session = await initiateSession(channel, from.key, {
    expectedPeer: to.onion,
    maxPayload: MAX_FILE_RECORD_BYTES,
  });
  return { session, channel };
}
