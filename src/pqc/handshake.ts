/**
 * The hybrid post-quantum handshake (docs/protocol.md §4): a 3-message SIGMA-I exchange over a ByteChannel.
 * Ephemeral X25519 + ML-KEM-768 secrets are combined X-Wing style with the transcript hash, both agents sign the
 * transcript with their Ed25519 identity keys (whose public key *is* their onion address), and identities
 * travel encrypted under handshake keys, so only the two agents learn who talked.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AgentKey } from '../identity/keys.js';
import { onionFromPublicKey, parseOnionAddress } from '../identity/onion.js';
import { SIGNING_CONTEXTS } from '../identity/signing.js';
import type { ByteChannel } from '../transport/byte-channel.js';
import {
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
  concatBytes,
  ED25519_PUB_LEN,
  ED25519_SIG_LEN,
  encodeHeader,
  helloBodyLen,
  KNOWN_SUITE_BITS,
  MLKEM_CT_LEN,
  MLKEM_EK_LEN,
  MSG_FINISH,
  MSG_HELLO,
  MSG_RESPONSE,
  NONCE_LEN,
  responseClearLen,
  SEALED_IDENTITY_LEN,
  SUITE_BITS,
  suiteFromBit,
  X25519_PUB_LEN,
} from './_wire.js';
import { HandshakeError } from './errors.js';
import { FrameCipher } from './frames.js';
import { read, readHeader, runHandshake, sendAlert } from './handshake-io.js';
import {
  digest,
  type HandshakeKeys,
  handshakeKeys,
  LABEL_BYTES,
  signedPayload,
  trafficKeys,
} from './handshake-keys.js';
import {
  checkMaxPayload,
  enabledBits,
  type HandshakeOptions,
  type InitiateOptions,
} from './handshake-options.js';
import { type SecureSession, Session } from './session.js';

export { TRANSCRIPT_LABEL } from './handshake-keys.js';
export { HANDSHAKE_TIMEOUT_MS, type HandshakeOptions, type InitiateOptions } from './handshake-options.js';

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
