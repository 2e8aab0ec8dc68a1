// The non-throwing noise length decoder (src/transport/_noise-decoder.ts): the same messages out of any split of
// the byte stream as noise's own decoder, with no RangeError per message, and on a live noise connection over
// loopback TCP. Framing: libp2p noise spec ("Wire Format"), a 2-byte big-endian length before each message.
import '../../src/_polyfill.js';
import net from 'node:net';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { Logger, MultiaddrConnection, StreamMessageEvent } from '@libp2p/interface';
import { defaultLogger } from '@libp2p/logger';
import { LengthPrefixedDecoder } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import fc from 'fast-check';
import type { Uint8ArrayList } from 'uint8arraylist';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkNoise,
  installedNoiseVersion,
  NOISE_MAX_MESSAGE,
  NOISE_PATCHED_VERSION,
  noiseLengthOrWait,
  quietNoise,
  useQuietDecoder,
} from '../../src/transport/_noise-decoder.js';
import { socketToMaConn } from '../../src/transport/_socket-conn.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * noise's own length decoder (`uint16BEDecode` of `@chainsafe/libp2p-noise` 17.0.0, `dist/src/encoder.js`; the
 * package does not export it): a RangeError for fewer than 2 bytes, which the decoder loop catches.
 */
function uint16BEDecode(data: Uint8ArrayList): number {
  if (data.length < 2) throw new RangeError('Could not decode int16BE');
  return data.getUint16(0);
}

/** `messages` as noise puts them on the wire: each after its 2-byte big-endian length. */
function framed(messages: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messages.reduce((n, m) => n + 2 + m.length, 0));
  let at = 0;
  for (const m of messages) {
    out[at] = m.length >> 8;
    out[at + 1] = m.length & 0xff;
    out.set(m, at + 2);
    at += 2 + m.length;
  }
  return out;
}

/** Feeds `bytes` cut at `cuts` to a decoder using `lengthDecoder`; the messages it yields. */
function decodeSplit(
  bytes: Uint8Array,
  cuts: readonly number[],
  lengthDecoder: (d: Uint8ArrayList) => number,
): Uint8Array[] {
  const decoder = new LengthPrefixedDecoder({ lengthDecoder, encodingLength: () => 2 });
  const out: Uint8Array[] = [];
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
    (a, b) => a - b,
  );
  for (let i = 1; i < points.length; i++) {
    for (const m of decoder.decode(bytes.subarray(points[i - 1], points[i]))) out.push(m.subarray());
  }
  return out;
}

describe('the quiet noise length decoder', () => {
  it('decodes what noise decodes from any split, where noise throws a RangeError after each message', () => {
    const message = fc.uint8Array({ minLength: 1, maxLength: 300 });
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, cuts) => {
          const bytes = framed(messages);
          let thrown = 0;
          const counted = (d: Uint8ArrayList) => {
            try {
              return uint16BEDecode(d);
            } catch (e) {
              thrown++;
              throw e;
            }
          };
          const reference = decodeSplit(bytes, cuts, counted);
          const ours = decodeSplit(bytes, cuts, noiseLengthOrWait);
          expect(reference).toEqual(messages);
          expect(ours).toEqual(messages);
          // The package's decoder learns "no further prefix" from an exception: at least once per message.
          expect(thrown).toBeGreaterThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers "more than is buffered" for fewer than 2 bytes and the length otherwise', () => {
    expect(noiseLengthOrWait(new Uint8Array(0))).toBe(NOISE_MAX_MESSAGE);
    expect(noiseLengthOrWait(Uint8Array.of(0x01))).toBe(NOISE_MAX_MESSAGE);
    expect(noiseLengthOrWait(Uint8Array.of(0x01, 0x02, 0xff))).toBe(0x0102);
    expect(noiseLengthOrWait(Uint8Array.of(0xff, 0xff))).toBe(65_535);
  });

  it('is written for the installed package, and refuses a connection without the expected decoder', () => {
    expect(installedNoiseVersion()).toBe(NOISE_PATCHED_VERSION);
    expect(() => checkNoise()).not.toThrow();
    expect(() => useQuietDecoder({})).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }));
    expect(() => useQuietDecoder({ decoder: { lengthDecoder: () => 0, encodingLength: () => 4 } })).toThrow(
      expect.objectContaining({ code: 'ERR_INTERNAL' }),
    );
  });

  it('secures a live connection both ways: every connection gets the decoder, messages arrive whole', async () => {
    const server = net.createServer();
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const dialSocket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise<void>((r) => dialSocket.once('connect', () => r()));
    const listenSocket = await accepted;
    closers.push(() => {
      dialSocket.destroy();
      listenSocket.destroy();
    });
    const addr = multiaddr('/ip4/127.0.0.1/tcp/1');
    const log: Logger = defaultLogger().forComponent('test:noise');
    const maConn = (socket: net.Socket, direction: 'inbound' | 'outbound'): MultiaddrConnection =>
      socketToMaConn({ socket, remoteAddr: addr, direction, log }) as unknown as MultiaddrConnection;
    const encrypter = async (seed: number) => {
      const privateKey = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed));
      const components = {
        privateKey,
        logger: defaultLogger(),
        upgrader: { getStreamMuxers: () => new Map() },
      } as unknown as Parameters<ReturnType<typeof quietNoise>>[0];
      return quietNoise()(components);
    };
    const [dialer, listener] = await Promise.all([encrypter(1), encrypter(2)]);
    const [out, served] = await Promise.all([
      dialer.secureOutbound(maConn(dialSocket, 'outbound'), { skipStreamMuxerNegotiation: true }),
      listener.secureInbound(maConn(listenSocket, 'inbound'), { skipStreamMuxerNegotiation: true }),
    ]);
    for (const c of [out.connection, served.connection]) {
      expect((c as unknown as { decoder: { lengthDecoder: unknown } }).decoder.lengthDecoder).toBe(
        noiseLengthOrWait,
      );
    }
    // Sizes around one noise message (65,535 − 16 bytes of plaintext) and tiny ones, back to back.
    const sizes = [1, 2, 3, 100, 65_519, 65_520, 70_000, 5, 200_000, 1];
    const sent = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
    const total = sizes.reduce((a, b) => a + b, 0);
    const got: Uint8Array[] = [];
    let have = 0;
    const all = new Promise<void>((resolve) => {
      served.connection.addEventListener('message', (evt: StreamMessageEvent) => {
        got.push(evt.data.subarray());
        have += evt.data.byteLength;
        if (have >= total) resolve();
      });
    });
    for (const m of sent) out.connection.send(m);
    await all;
    expect(Buffer.concat(got)).toEqual(Buffer.concat(sent));
    out.connection.abort(new Error('test over'));
    served.connection.abort(new Error('test over'));
  });
});
