/**
 * The one-round-trip circuit handshake with one hop (docs/protocol.md §8.3): the client sends fresh X25519 and
 * ML-KEM-768 keys, the relay answers its X25519 key, the ML-KEM ciphertext and an Ed25519 signature by its
 * identity over the transcript. Keys come from both shared secrets and the transcript (the X-Wing combiner's
 * inputs), so a hop's layer stays secret if either X25519 or ML-KEM-768 holds. The client has no identity.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AgentKey } from '../identity/keys.js';
import { SIGNING_CONTEXTS } from '../identity/signing.js';
import {
  hkdfExpand,
  hkdfExtract,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemKeygen,
  verifyEd25519,
  wipe,
  type X25519Ephemeral,
  x25519Ephemeral,
  x25519Shared,
} from '../pqc/_primitives.js';
import { HandshakeError } from '../pqc/errors.js';
import { BODY_LEN, CMD_CREATE, CMD_CREATED } from './_wire.js';
import { type HopLayers, LayerKey } from './layers.js';

export const CIRCUIT_LABEL = 'mmogit-mesh-circuit/v1';
const LABEL = Buffer.from(CIRCUIT_LABEL, 'ascii');
const HTYPE_HYBRID = 0x01;
const X_LEN = 32;
const EK_LEN = 1184;
const CT_LEN = 1088;
const SIG_LEN = 64;

function transcript(relayKey: Uint8Array, create: Uint8Array, xR: Uint8Array, ct: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256').update(LABEL).update(relayKey).update(create).update(xR).update(ct).digest(),
  );
}

function layersFrom(ssKem: Uint8Array, ssX: Uint8Array, th: Uint8Array): HopLayers {
  const ikm = Buffer.concat([ssKem, ssX, th]);
  const prk = hkdfExtract(LABEL, ikm);
  try {
    return {
      forward: new LayerKey(hkdfExpand(prk, 'mmogit-mesh/v1 forward')),
      backward: new LayerKey(hkdfExpand(prk, 'mmogit-mesh/v1 backward')),
    };
  } finally {
    wipe(ikm, prk);
  }
}

/** The client's half-open handshake with one hop. */
export interface PendingCreate {
  /** The CREATE body (1,217 bytes). */
  readonly body: Uint8Array;
  /** Completes it with the CREATED body; throws HandshakeError (`bad-signature`, `malformed`). */
  finish(created: Uint8Array): HopLayers;
}

/**
 * Starts a handshake with the relay whose Ed25519 key is `relayKey` (the key the client chose: its onion).
 * @example
 * const pending = startCreate(relay.publicKey); send(pending.body); const hop = pending.finish(createdBody);
 */
export function startCreate(relayKey: Uint8Array): PendingCreate {
  const eph: X25519Ephemeral = x25519Ephemeral();
  const kem = mlkemKeygen();
  const body = Buffer.concat([Uint8Array.of(HTYPE_HYBRID), eph.publicKey, kem.publicKey]);
  let used = false;
  return {
    body,
    finish(created) {
      if (used) throw new HandshakeError('malformed', 'circuit handshake finished twice');
      used = true;
      try {
        if (created.length !== BODY_LEN[CMD_CREATED])
          throw new HandshakeError('malformed', 'CREATED has a bad length');
        const xR = created.subarray(0, X_LEN);
        const ct = created.subarray(X_LEN, X_LEN + CT_LEN);
        const sig = created.subarray(X_LEN + CT_LEN, X_LEN + CT_LEN + SIG_LEN);
        const th = transcript(relayKey, body, xR, ct);
        if (!verifyEd25519(SIGNING_CONTEXTS.meshCircuit, th, sig, relayKey)) {
          throw new HandshakeError(
            'bad-signature',
            'the relay signature over the circuit handshake does not verify',
          );
        }
        const ssX = x25519Shared(eph.privateKey, xR);
        if (!ssX) throw new HandshakeError('malformed', 'relay X25519 key is invalid or low-order');
        const ssKem = mlkemDecapsulate(ct, kem.secretKey);
        try {
          return layersFrom(ssKem, ssX, th);
        } finally {
          wipe(ssKem, ssX);
        }
      } finally {
        wipe(kem.secretKey);
      }
    },
  };
}

/**
 * The relay's side: answers a CREATE body with a CREATED body and the hop's layers.
 * @throws HandshakeError `malformed` for a bad type, X25519 key or ML-KEM key.
 */
export function answerCreate(self: AgentKey, create: Uint8Array): { created: Buffer; layers: HopLayers } {
  if (create.length !== BODY_LEN[CMD_CREATE] || create[0] !== HTYPE_HYBRID) {
    throw new HandshakeError('malformed', 'CREATE has an unknown handshake type or length');
  }
  const xC = create.subarray(1, 1 + X_LEN);
  const ek = create.subarray(1 + X_LEN, 1 + X_LEN + EK_LEN);
  const eph = x25519Ephemeral();
  const ssX = x25519Shared(eph.privateKey, xC);
  if (!ssX) throw new HandshakeError('malformed', 'client X25519 key is invalid or low-order');
  const enc = mlkemEncapsulate(ek);
  if (!enc) {
    wipe(ssX);
    throw new HandshakeError('malformed', 'client ML-KEM key fails the FIPS 203 input check');
  }
  try {
    const th = transcript(self.publicKey, create, eph.publicKey, enc.cipherText);
    const sig = self.sign(SIGNING_CONTEXTS.meshCircuit, th);
    return {
      created: Buffer.concat([eph.publicKey, enc.cipherText, sig]),
      layers: layersFrom(enc.sharedSecret, ssX, th),
    };
  } finally {
    wipe(ssX, enc.sharedSecret);
  }
}

/** Constant-time comparison of two public keys. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
