/**
 * Noise transport messages decoded without an exception per message, for our nodes only.
 *
 * `@chainsafe/libp2p-noise` 17 splits the encrypted byte stream into transport messages (the Noise spec, §3,
 * caps one at 65,535 bytes; libp2p's noise spec puts a 2-byte big-endian length in front of each) with
 * `LengthPrefixedDecoder` of `@libp2p/utils`, whose loop learns that the buffer holds no further length prefix
 * by catching the `RangeError` that noise's `uint16BEDecode` throws for fewer than 2 bytes. That is one thrown
 * and caught error, with its stack trace, after *every* message received: a warm ping over tor paid ~50 µs
 * for it and ~90 µs of CPU on this VM (docs/protocol.md §5.7.2.3, in-process A/B).
 * {@link quietNoise} gives every connection it secures a length decoder that answers "more than is buffered"
 * instead: the decoder then waits for more bytes, exactly as after the caught error, with nothing thrown.
 *
 * Scope: the rule is set on each connection the factory secures (the instance's `decoder.lengthDecoder`), never
 * on a shared prototype or module, so another libp2p in the same process keeps the package's behaviour. It
 * reaches one internal, checked against the version it was read from ({@link NOISE_PATCHED_VERSION}); a node
 * refuses to start (`ERR_INTERNAL`) when the package or that internal changed, rather than silently losing the
 * rule. test/transport/noise-decoder.test.ts decodes split streams both ways and checks a live connection.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import type { ConnectionEncrypter } from '@libp2p/interface';
import type { Uint8ArrayList } from 'uint8arraylist';
import { MmogitError } from '../errors.js';

/** The `@chainsafe/libp2p-noise` version whose internals this module was written against. */
export const NOISE_PATCHED_VERSION = '17.0.0';

/**
 * The largest noise transport message (Noise spec §3: 65,535 bytes). Answered for a buffer too short to hold a
 * length: the decoder's "not all of it is here yet" branch, which waits for more bytes (it is not above the
 * decoder's `maxDataLength`, so it is never mistaken for an oversized message).
 */
export const NOISE_MAX_MESSAGE = 65_535;

type NoiseInit = Parameters<typeof noise>[0];
type Components = Parameters<ReturnType<typeof noise>>[0];

/**
 * noise's 2-byte big-endian length prefix, or {@link NOISE_MAX_MESSAGE} while fewer than 2 bytes are buffered
 * (where noise's own decoder throws a `RangeError` that the decoder loop catches).
 */
export function noiseLengthOrWait(data: Uint8ArrayList | Uint8Array): number {
  if (data.length < 2) return NOISE_MAX_MESSAGE;
  if (data instanceof Uint8Array) return ((data[0] as number) << 8) | (data[1] as number);
  return data.getUint16(0);
}
noiseLengthOrWait.bytes = 2;

/** The decoder fields of a secured connection, as `utils.js` of {@link NOISE_PATCHED_VERSION} keeps them. */
interface DecoderHost {
  decoder: { lengthDecoder: (data: Uint8ArrayList) => number; encodingLength: (n: number) => number };
}

function hasDecoder(conn: unknown): conn is DecoderHost {
  if (typeof conn !== 'object' || conn === null) return false;
  const d = (conn as Record<string, unknown>).decoder;
  if (typeof d !== 'object' || d === null) return false;
  const fields = d as Record<string, unknown>;
  return typeof fields.lengthDecoder === 'function' && typeof fields.encodingLength === 'function';
}

function changed(what: string): MmogitError {
  return new MmogitError(
    'ERR_INTERNAL',
    `@chainsafe/libp2p-noise changed (${what}): src/transport/_noise-decoder.ts was written for ${NOISE_PATCHED_VERSION}; re-check its length decoder against the new version`,
    { details: { expected: NOISE_PATCHED_VERSION } },
  );
}

/** The installed package's version, read from its package.json (the package does not export that file). */
export function installedNoiseVersion(): string | undefined {
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths('@chainsafe/libp2p-noise') ?? []) {
    const file = join(dir, '@chainsafe', 'libp2p-noise', 'package.json');
    if (!existsSync(file)) continue;
    const version: unknown = JSON.parse(readFileSync(file, 'utf8')).version;
    return typeof version === 'string' ? version : undefined;
  }
  return undefined;
}

/** Throws `ERR_INTERNAL` unless the installed noise is the version this module was written for. */
export function checkNoise(): void {
  const version = installedNoiseVersion();
  if (version !== NOISE_PATCHED_VERSION) throw changed(`installed version ${version ?? 'unknown'}`);
}

/**
 * Gives one secured connection the non-throwing length decoder. Throws `ERR_INTERNAL` when the connection
 * does not have the decoder this module expects (the package changed).
 */
export function useQuietDecoder(conn: unknown): void {
  if (!hasDecoder(conn)) throw changed('secured connection has no decoder.lengthDecoder');
  // The prefix must stay the 2 bytes noise writes; anything else would be a different framing.
  if (conn.decoder.encodingLength(0) !== 2) throw changed('length prefix is not 2 bytes');
  conn.decoder.lengthDecoder = noiseLengthOrWait;
}

/**
 * `noise(init)` whose secured connections decode without a thrown error per message. Use it in place of
 * `noise()` in `connectionEncrypters`; throws `ERR_INTERNAL` at once if the package changed (module comment).
 *
 * @example
 * createLibp2p({ connectionEncrypters: [quietNoise()], … })
 */
export function quietNoise(init?: NoiseInit): (components: Components) => ConnectionEncrypter {
  checkNoise();
  const make = noise(init);
  return (components) => {
    const encrypter = make(components);
    const outbound = encrypter.secureOutbound.bind(encrypter);
    const inbound = encrypter.secureInbound.bind(encrypter);
    encrypter.secureOutbound = async (...args: Parameters<typeof outbound>) => {
      const secured = await outbound(...args);
      useQuietDecoder(secured.connection);
      return secured;
    };
    encrypter.secureInbound = async (...args: Parameters<typeof inbound>) => {
      const secured = await inbound(...args);
      useQuietDecoder(secured.connection);
      return secured;
    };
    return encrypter;
  };
}
