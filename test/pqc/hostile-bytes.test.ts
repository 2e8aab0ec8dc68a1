// Arbitrary and almost-valid bytes fed to every decoder of the PQ channel (both handshake roles and the
// session's frame reader): each fails with a typed MmogitError, never a TypeError or RangeError.
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { FrameCipher } from '../../src/pqc/frames.js';
import { acceptSession, initiateSession } from '../../src/pqc/index.js';
import { Session } from '../../src/pqc/session.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { propertyParams } from '../helpers/property.js';

const alice = AgentKey.random();
const bob = AgentKey.random();

/** A real ByteChannel over a stream that delivers `bytes` (in `chunks` pieces) then ends; writes vanish. */
function feeding(bytes: Uint8Array, chunks = 1) {
  const stream = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      cb();
    },
  });
  const step = Math.max(1, Math.ceil(bytes.length / chunks));
  for (let at = 0; at < bytes.length; at += step) stream.push(Buffer.from(bytes.subarray(at, at + step)));
  stream.push(null);
  return channelFromDuplex(stream);
}

async function onlyTyped(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(MmogitError);
    return;
  }
  throw new Error('hostile bytes were accepted');
}

const MAGIC = [0x4d, 0x4d, 0x50, 0x51];
/** Message headers that pass or nearly pass the parser: right magic, any version/type/param/reserved. */
const nearHeader = fc
  .tuple(
    fc.constantFrom(1, 0, 2, 255),
    fc.constantFrom(1, 2, 3, 0xff, 0, 7),
    fc.nat(255),
    fc.constantFrom(0, 0, 1),
  )
  .map(([v, t, p, r]) => Uint8Array.of(...MAGIC, v, t, p, r));
const body = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.integer({ min: 0, max: 2600 }).map((n) => new Uint8Array(randomBytes(n))),
);
const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc.tuple(nearHeader, body).map(([h, b]) => Buffer.concat([h, b])),
);

describe('PQ channel decoders under hostile bytes', () => {
  it('property: the responder refuses any first message with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, fc.integer({ min: 1, max: 4 }), async (bytes, chunks) => {
        await onlyTyped(() => acceptSession(feeding(bytes, chunks), bob, { timeoutMs: 5_000 }));
      }),
      propertyParams('pq responder', { numRuns: 150 }),
    );
  });

  it('property: the initiator refuses any answer with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(hostile, async (bytes) => {
        await onlyTyped(() =>
          initiateSession(feeding(bytes), alice, { expectedPeer: bob.onion, timeoutMs: 5_000 }),
        );
      }),
      propertyParams('pq initiator', { numRuns: 150 }),
    );
  });

  it('property: a live session refuses any frame bytes with a typed error', async () => {
    const lengths = fc.oneof(
      fc.constantFrom(0, 16, 17, 65_552, 65_553, 0xffffffff),
      fc.integer({ min: 0, max: 2000 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(lengths, body).map(([n, b]) => {
            const h = Buffer.alloc(4);
            h.writeUInt32BE(n >>> 0);
            return Buffer.concat([h, b]);
          }),
        ),
        async (bytes) => {
          const session = new Session({
            channel: feeding(bytes),
            peer: { publicKey: bob.publicKey, onion: bob.onion },
            suite: 'hybrid-x25519-mlkem768',
            transcriptHash: new Uint8Array(32),
            handshakeMs: 0,
            sender: new FrameCipher(new Uint8Array(randomBytes(32))),
            receiver: new FrameCipher(new Uint8Array(randomBytes(32))),
            maxPayload: 1024 * 1024,
          });
          await onlyTyped(() => session.receive({ timeoutMs: 5_000 }));
        },
      ),
      propertyParams('pq frames', { numRuns: 200 }),
    );
  });
});
