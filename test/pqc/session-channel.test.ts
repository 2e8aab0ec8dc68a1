import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SecureSession } from '../../src/pqc/session.js';
import { channelFromSession } from '../../src/pqc/session-channel.js';
import type { ByteChannel } from '../../src/transport/byte-channel.js';
import { propertyParams } from '../helpers/property.js';

/** A session whose receive() yields `payloads` then a clean close (the peer's side of the channel). */
function sessionOf(payloads: Uint8Array[]): SecureSession {
  let i = 0;
  return {
    peer: { publicKey: new Uint8Array(32), onion: 'x.onion' },
    suite: 'hybrid-x25519-mlkem768',
    transcriptHash: new Uint8Array(32),
    handshakeMs: 0,
    send: async () => {},
    sendParts: async () => {},
    receive: async () => (i < payloads.length ? (payloads[i++] as Uint8Array) : null),
    close: async () => {},
    abort: () => {},
  };
}
const unused = {} as ByteChannel;

describe('channelFromSession', () => {
  it('property: reads of any sizes return the payloads’ bytes in order, whatever their split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 30 }),
        async (payloads, reads) => {
          const all = Buffer.concat(payloads);
          const ch = channelFromSession(sessionOf(payloads), unused);
          let at = 0;
          for (const n of reads) {
            if (at + n > all.length) {
              await expect(ch.readExactly(n)).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
              return;
            }
            expect(Buffer.from(await ch.readExactly(n)).equals(all.subarray(at, at + n))).toBe(true);
            at += n;
          }
        },
      ),
      propertyParams('session channel reads', { numRuns: 300 }),
    );
  });

  it('one large read made of 300,000 one-byte payloads costs linear work, not quadratic', async () => {
    // Joining each payload onto a growing buffer copied ~45 GB here (minutes); a queue copies 300 kB once.
    const n = 300_000;
    const payloads = Array.from({ length: n }, (_, i) => Uint8Array.of(i & 0xff));
    const got = await channelFromSession(sessionOf(payloads), unused).readExactly(n);
    expect(got.length).toBe(n);
    expect(got[n - 1]).toBe((n - 1) & 0xff);
  }, 10_000);
});
