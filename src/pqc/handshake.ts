/**
 * The hybrid post-quantum handshake (docs/protocol.md §4): a 3-message SIGMA-I exchange over a ByteChannel.
 * Ephemeral X25519 + ML-KEM-768 secrets are combined X-Wing style with the transcript hash, both agents sign the
 * transcript with their Ed25519 identity keys (whose public key *is* their onion address), and identities
 * travel encrypted under handshake keys, so only the two agents learn who talked.
 * @module
 */
import { createHash, type Hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { abortReason, hasCode, MmogitError } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey, parseOnionAddress } from '../identity/onion.js';
import { SIGNING_CONTEXTS } from '../identity/signing.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import {
  hkdfExpand,
  hkdfExtract,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
  open,
  seal,
  verifyEd25519,
  wipe,
  x25519Ephemeral,
  x25519Shared,
} from './_primitives.js';
import {
  ALERT_UNSUPPORTED_SUITE,
  ALERT_VERSION,
  type CipherSuite,
  concatBytes,
  ED25519_PUB_LEN,
  ED25519_SIG_LEN,
  encodeHeader,
  HEADER_LEN,
  helloBodyLen,
  KNOWN_SUITE_BITS,
  MLKEM_CT_LEN,
  MLKEM_EK_LEN,
  MSG_ALERT,
  MSG_FINISH,
  MSG_HELLO,
  MSG_RESPONSE,
  NONCE_LEN,
  parseHeader,
  responseClearLen,
  SEALED_IDENTITY_LEN,
  SUITE_BITS,
  suiteFromBit,
  X25519_PUB_LEN,
} from './_wire.js';
import { HandshakeError, type HandshakeFailure } from './errors.js';
import { FrameCipher } from './frames.js';
import { DEFAULT_MAX_PAYLOAD, deadline, type SecureSession, Session } from './session.js';

/** Default time for the whole handshake: 1.5 round trips over tor, with slack for slow circuits. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Domain label hashed first into the transcript and used as the HKDF salt of the handshake secret. */
export const TRANSCRIPT_LABEL = 'mmogit-pq-handshake/v1';
const LABEL_BYTES = new TextEncoder().encode(TRANSCRIPT_LABEL);

/** Options shared by both roles. */
export interface HandshakeOptions {
  /** Accept the classical-only suite (no post-quantum protection). Off by default. */
  allowClassical?: boolean;
  /**
   * Restrict the suites this side offers (initiator) or accepts (responder). Classical is only ever used when
   * `allowClassical` is also true; the hybrid suite is always preferred when both sides have it.
   */
  suites?: readonly CipherSuite[];
  /** Largest payload this session sends or accepts (default {@link DEFAULT_MAX_PAYLOAD}). */
  maxPayload?: number;
  signal?: AbortSignal;
  /** Default {@link HANDSHAKE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** Options of {@link initiateSession}. */
export interface InitiateOptions extends HandshakeOptions {
  /** The onion address we dialled: the responder must prove it owns this identity. */
  expectedPeer: string;
}

function enabledBits(options: HandshakeOptions): number {
  const wanted = options.suites ?? ['hybrid-x25519-mlkem768', 'classical-x25519'];
  let bits = 0;
  for (const s of wanted) {
    if (s === 'classical-x25519' && !options.allowClassical) continue;
    const bit = SUITE_BITS[s];
    if (bit === undefined) {
      throw new MmogitError('ERR_INVALID_ARGUMENT', `unknown cipher suite "${s}"`);
    }
    bits |= bit;
  }
  if (bits === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'no cipher suite enabled (classical needs allowClassical)');
  }
  return bits;
}

function checkMaxPayload(max: number | undefined): number {
  const value = max ?? DEFAULT_MAX_PAYLOAD;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'maxPayload must be a non-negative integer');
  }
  return value;
}

/** What each side signs: role ‖ 0x00 ‖ transcript hash ‖ public keys (docs/protocol.md §4.4). */
function signedPayload(role: 'responder' | 'initiator', th: Uint8Array, ...keys: Uint8Array[]): Uint8Array {
  return concatBytes(new TextEncoder().encode(`${role}\0`), th, ...keys);
}

interface HandshakeKeys {
  r2i: Uint8Array;
  i2r: Uint8Array;
  chain: Uint8Array;
}

/**
 * Handshake secret: HKDF-SHA256 over ML-KEM secret ‖ X25519 secret ‖ transcript hash (which covers both
 * X25519 public keys, the ML-KEM encapsulation key and ciphertext): the X-Wing combiner's inputs
 * (draft-connolly-cfrg-xwing-kem §5.3), so the keys stay secret if either KEM holds.
 */
function handshakeKeys(ssKem: Uint8Array | null, ssX: Uint8Array, thA: Uint8Array): HandshakeKeys {
  const ikm = ssKem ? concatBytes(ssKem, ssX, thA) : concatBytes(ssX, thA);
  const prk = hkdfExtract(LABEL_BYTES, ikm);
  try {
    return {
      r2i: hkdfExpand(prk, 'mmogit-pq/v1 hs r2i'),
      i2r: hkdfExpand(prk, 'mmogit-pq/v1 hs i2r'),
      chain: hkdfExpand(prk, 'mmogit-pq/v1 chain'),
    };
  } finally {
    wipe(ikm, prk);
  }
}

/** Traffic keys bound to the full transcript. */
function trafficKeys(chain: Uint8Array, thFinal: Uint8Array): { i2r: Uint8Array; r2i: Uint8Array } {
  const prk = hkdfExtract(thFinal, chain);
  try {
    return {
      i2r: hkdfExpand(prk, 'mmogit-pq/v1 traffic i2r'),
      r2i: hkdfExpand(prk, 'mmogit-pq/v1 traffic r2i'),
    };
  } finally {
    wipe(prk);
  }
}

function digest(th: Hash): Uint8Array {
  return new Uint8Array(th.copy().digest());
}

async function read(channel: ByteChannel, n: number, signal: AbortSignal, what: string): Promise<Uint8Array> {
  try {
    return await channel.readExactly(n, { signal });
  } catch (e) {
    if (hasCode(e, 'ERR_CONNECTION_CLOSED')) {
      throw new HandshakeError('truncated', `connection ended while reading ${what}`, { cause: e });
    }
    throw e;
  }
}

/** Reads a header; an alert from the peer becomes the peer's reason with `remote: true`. */
async function readHeader(
  channel: ByteChannel,
  signal: AbortSignal,
  expectedType: number,
  first: boolean,
): Promise<number> {
  const bytes = await read(channel, HEADER_LEN, signal, `message ${expectedType} header`);
  let header: ReturnType<typeof parseHeader>;
  try {
    header = parseHeader(bytes);
  } catch (e) {
    // Bad magic on a later message is a broken stream, not another protocol.
    if (!first && e instanceof HandshakeError && e.reason === 'version') {
      throw new HandshakeError('malformed', `message ${expectedType} has a bad header`, { cause: e });
    }
    throw e;
  }
  if (header.type === MSG_ALERT) {
    const reason: HandshakeFailure =
      header.param === ALERT_VERSION
        ? 'version'
        : header.param === ALERT_UNSUPPORTED_SUITE
          ? 'unsupported-suite'
          : 'malformed';
    throw new HandshakeError(reason, `peer refused the handshake (${reason})`, { remote: true });
  }
  if (header.type !== expectedType) {
    throw new HandshakeError('malformed', `expected message ${expectedType}, got type ${header.type}`);
  }
  return header.param;
}

/** Best-effort alert before we hang up, so the peer gets a typed reason instead of a bare close. */
async function sendAlert(channel: ByteChannel, code: number, signal: AbortSignal): Promise<void> {
  try {
    await channel.write(encodeHeader(MSG_ALERT, code), { signal });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      channel.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1_000);
      }),
    ]);
    clearTimeout(timer);
  } catch {
    // The peer may already be gone; the local error is what matters.
  }
}

async function runHandshake<T>(
  channel: ByteChannel,
  options: HandshakeOptions,
  what: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { signal, done } = deadline(options.signal, options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS, what);
  try {
    if (signal.aborted) throw abortReason(signal, what);
    return await body(signal);
  } catch (e) {
    // A failed handshake leaves the channel in an unknown state: tear it down.
    channel.abort(e instanceof Error ? e : new Error(String(e)));
    throw e;
  } finally {
    done();
  }
}

/**
 * Runs the initiator side of the handshake over `channel` (which we dialled to `expectedPeer`) and returns
 * the live session. The responder must prove ownership of `expectedPeer`'s key, else `wrong-identity`.
 *
 * @throws HandshakeError (`ERR_HANDSHAKE`) with a `reason`; `ERR_INVALID_ONION` for a bad `expectedPeer`;
 *   `ERR_TIMEOUT` / `ERR_ABORTED`. On any failure the channel is aborted.
 * @example
 * ```ts
 * const session = await initiateSession(channelFromDuplex(socket), myKey, { expectedPeer: 'abc….onion' });
 * await session.send(new TextEncoder().encode('hello'));
 * ```
 */
export async function initiateSession(
  channel: ByteChannel,
  self: AgentKey,
  options: InitiateOptions,
): Promise<SecureSession> {
  const started = performance.now();
  const expected = parseOnionAddress(options.expectedPeer);
  const offer = enabledBits(options);
  const maxPayload = checkMaxPayload(options.maxPayload);

  return runHandshake(channel, options, 'pq handshake (initiator)', async (signal) => {
    const hybridOffered = (offer & SUITE_BITS['hybrid-x25519-mlkem768']) !== 0;
    const eph = x25519Ephemeral();
    const kem = hybridOffered ? mlkemKeygen() : null;
    let ssX: Uint8Array | null = null;
    let ssKem: Uint8Array | null = null;
    let keys: HandshakeKeys | null = null;
    try {
      // Message 1: header(offer) ‖ nonce ‖ X25519 ephemeral ‖ [ML-KEM-768 encapsulation key]
      const msg1 = concatBytes(
        encodeHeader(MSG_HELLO, offer),
        new Uint8Array(randomBytes(NONCE_LEN)),
        eph.publicKey,
        kem ? kem.publicKey : new Uint8Array(0),
      );
      const th = createHash('sha256').update(LABEL_BYTES).update(msg1);
      await channel.write(msg1, { signal });

      // Message 2: header(choice) ‖ nonce ‖ X25519 ephemeral ‖ [ML-KEM ciphertext] ‖ sealed identity
      const choice = await readHeader(channel, signal, MSG_RESPONSE, true);
      const suite = suiteFromBit(choice);
      if (!suite || (choice & offer) === 0) {
        throw new HandshakeError(
          'unsupported-suite',
          `responder chose suite ${choice}, which we did not offer`,
        );
      }
      const clear = await read(channel, responseClearLen(suite), signal, 'message 2');
      const sealedR = await read(channel, SEALED_IDENTITY_LEN, signal, 'message 2 identity');
      th.update(encodeHeader(MSG_RESPONSE, choice)).update(clear);
      const thA = digest(th);
      const peerEph = clear.subarray(NONCE_LEN, NONCE_LEN + X25519_PUB_LEN);
      ssX = x25519Shared(eph.privateKey, peerEph);
      if (!ssX) throw new HandshakeError('malformed', 'responder X25519 key is invalid or low-order');
      if (suite === 'hybrid-x25519-mlkem768' && kem) {
        const ct = clear.subarray(NONCE_LEN + X25519_PUB_LEN, NONCE_LEN + X25519_PUB_LEN + MLKEM_CT_LEN);
        ssKem = mlkemDecapsulate(ct, kem.secretKey);
      }
      keys = handshakeKeys(ssKem, ssX, thA);

      const identity = open(keys.r2i, 0, thA, sealedR);
      if (!identity) throw new HandshakeError('tampered', 'message 2 failed authentication');
      th.update(sealedR);
      const peerKey = identity.slice(0, ED25519_PUB_LEN);
      const peerSig = identity.slice(ED25519_PUB_LEN, ED25519_PUB_LEN + ED25519_SIG_LEN);
      if (!timingSafeEqual(peerKey, expected.publicKey)) {
        throw new HandshakeError('wrong-identity', `responder is not ${expected.hostname}`, {
          details: { expected: expected.hostname, got: onionFromPublicKey(peerKey) },
        });
      }
      if (
        !verifyEd25519(SIGNING_CONTEXTS.handshake, signedPayload('responder', thA, peerKey), peerSig, peerKey)
      ) {
        throw new HandshakeError('bad-signature', 'responder signature over the transcript does not verify');
      }

      // Message 3: header ‖ sealed(initiator public key ‖ signature)
      const header3 = encodeHeader(MSG_FINISH, 0);
      th.update(header3);
      const thB = digest(th);
      const sig = self.sign(
        SIGNING_CONTEXTS.handshake,
        signedPayload('initiator', thB, self.publicKey, peerKey),
      );
      const sealedI = seal(keys.i2r, 0, thB, concatBytes(self.publicKey, sig));
      await channel.write(concatBytes(header3, sealedI), { signal });
      th.update(sealedI);
      const thFinal = new Uint8Array(th.digest());
      const traffic = trafficKeys(keys.chain, thFinal);
      return new Session({
        channel,
        peer: { publicKey: peerKey, onion: expected.hostname },
        suite,
        transcriptHash: thFinal,
        handshakeMs: performance.now() - started,
        sender: new FrameCipher(traffic.i2r),
        receiver: new FrameCipher(traffic.r2i),
        maxPayload,
      });
    } finally {
      wipe(kem?.secretKey, ssX, ssKem, keys?.r2i, keys?.i2r, keys?.chain);
    }
  });
}

/**
 * Runs the responder side of the handshake over an incoming `channel` and returns the live session once the
 * initiator proved its identity (`session.peer`). Authorising that peer is the caller's decision.
 *
 * @throws HandshakeError (`ERR_HANDSHAKE`) with a `reason`; `ERR_TIMEOUT` / `ERR_ABORTED`. On a version or
 *   suite mismatch the initiator is sent an alert first. On any failure the channel is aborted.
 * @example
 * ```ts
 * server.on('connection', async (socket) => {
 *   const session = await acceptSession(channelFromDuplex(socket), myKey);
 *   console.error('peer', session.peer.onion, await session.receive());
 * });
 * ```
 */
export async function acceptSession(
  channel: ByteChannel,
  self: AgentKey,
  options: HandshakeOptions = {},
): Promise<SecureSession> {
  const started = performance.now();
  const accepted = enabledBits(options);
  const maxPayload = checkMaxPayload(options.maxPayload);

  return runHandshake(channel, options, 'pq handshake (responder)', async (signal) => {
    let ssX: Uint8Array | null = null;
    let ssKem: Uint8Array | null = null;
    let keys: HandshakeKeys | null = null;
    try {
      // Message 1
      let offer: number;
      try {
        offer = await readHeader(channel, signal, MSG_HELLO, true);
      } catch (e) {
        if (e instanceof HandshakeError && e.reason === 'version' && !e.details?.remote) {
          await sendAlert(channel, ALERT_VERSION, signal);
        }
        throw e;
      }
      if (offer === 0 || (offer & ~KNOWN_SUITE_BITS) !== 0) {
        throw new HandshakeError('malformed', `message 1 offers unknown suites (0x${offer.toString(16)})`);
      }
      const body = await read(channel, helloBodyLen(offer), signal, 'message 1');
      const th = createHash('sha256').update(LABEL_BYTES).update(encodeHeader(MSG_HELLO, offer)).update(body);
      const both = offer & accepted;
      const choice =
        both & SUITE_BITS['hybrid-x25519-mlkem768']
          ? SUITE_BITS['hybrid-x25519-mlkem768']
          : both & SUITE_BITS['classical-x25519']
            ? SUITE_BITS['classical-x25519']
            : 0;
      const suite = suiteFromBit(choice);
      if (!suite) {
        await sendAlert(channel, ALERT_UNSUPPORTED_SUITE, signal);
        throw new HandshakeError(
          'unsupported-suite',
          offer === SUITE_BITS['classical-x25519']
            ? 'initiator offers only the classical suite (allowClassical is off)'
            : 'no common cipher suite',
          { details: { offered: offer, accepted } },
        );
      }
      const peerEph = body.subarray(NONCE_LEN, NONCE_LEN + X25519_PUB_LEN);
      const eph = x25519Ephemeral();
      ssX = x25519Shared(eph.privateKey, peerEph);
      if (!ssX) throw new HandshakeError('malformed', 'initiator X25519 key is invalid or low-order');
      let ct: Uint8Array = new Uint8Array(0);
      if (suite === 'hybrid-x25519-mlkem768') {
        const ek = body.subarray(NONCE_LEN + X25519_PUB_LEN, NONCE_LEN + X25519_PUB_LEN + MLKEM_EK_LEN);
        const enc = mlkemEncapsulate(ek);
        if (!enc)
          throw new HandshakeError('malformed', 'initiator ML-KEM key fails the FIPS 203 input check');
        ct = enc.cipherText;
        ssKem = enc.sharedSecret;
      }

      // Message 2
      const clear = concatBytes(
        encodeHeader(MSG_RESPONSE, choice),
        new Uint8Array(randomBytes(NONCE_LEN)),
        eph.publicKey,
        ct,
      );
      th.update(clear);
      const thA = digest(th);
      keys = handshakeKeys(ssKem, ssX, thA);
      const sig = self.sign(SIGNING_CONTEXTS.handshake, signedPayload('responder', thA, self.publicKey));
      const sealedR = seal(keys.r2i, 0, thA, concatBytes(self.publicKey, sig));
      await channel.write(concatBytes(clear, sealedR), { signal });
      th.update(sealedR);

      // Message 3
      await readHeader(channel, signal, MSG_FINISH, false).then((param) => {
        if (param !== 0) throw new HandshakeError('malformed', 'message 3 parameter is not zero');
      });
      th.update(encodeHeader(MSG_FINISH, 0));
      const thB = digest(th);
      const sealedI = await read(channel, SEALED_IDENTITY_LEN, signal, 'message 3');
      const identity = open(keys.i2r, 0, thB, sealedI);
      if (!identity) throw new HandshakeError('tampered', 'message 3 failed authentication');
      th.update(sealedI);
      const peerKey = identity.slice(0, ED25519_PUB_LEN);
      const peerSig = identity.slice(ED25519_PUB_LEN, ED25519_PUB_LEN + ED25519_SIG_LEN);
      if (
        !verifyEd25519(
          SIGNING_CONTEXTS.handshake,
          signedPayload('initiator', thB, peerKey, self.publicKey),
          peerSig,
          peerKey,
        )
      ) {
        throw new HandshakeError('bad-signature', 'initiator signature over the transcript does not verify');
      }
      const thFinal = new Uint8Array(th.digest());
      const traffic = trafficKeys(keys.chain, thFinal);
      return new Session({
        channel,
        peer: { publicKey: peerKey, onion: onionFromPublicKey(peerKey) },
        suite,
        transcriptHash: thFinal,
        handshakeMs: performance.now() - started,
        sender: new FrameCipher(traffic.r2i),
        receiver: new FrameCipher(traffic.i2r),
        maxPayload,
      });
    } finally {
      wipe(ssX, ssKem, keys?.r2i, keys?.i2r, keys?.chain);
    }
  });
}
