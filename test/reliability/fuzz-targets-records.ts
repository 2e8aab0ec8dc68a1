// Fuzz targets for signed records: message and ack frames (v1, v2), advertisements and DHT records, memory
// entries and A2A sender proofs. Seeds are the real signed bytes of test/vectors/wire plus records signed here;
// a mutated record that still verifies must say exactly what was signed (else it is an accepted forgery).
import { readFileSync } from 'node:fs';
import type { Message } from '@a2a-js/sdk';
import fc from 'fast-check';
import { userMessage } from '../../src/a2a/client.js';
import { messageContent, ProofChecker, signMessageProof } from '../../src/a2a/proof.js';
import { encodePreface, MAX_PREFACE_PROTOCOL, readPreface } from '../../src/agent/messaging-direct-wire.js';
import { decodeFrame, encodeFrame, verifyAck } from '../../src/agent/messaging-envelope.js';
import { parseAnyEnvelope, signMessageV2, verifyAnyMessage } from '../../src/agent/messaging-envelope-v2.js';
import { verifyAdvertisement } from '../../src/discovery/advertisement.js';
import { advertRecordKey, advertValidator } from '../../src/discovery/dht.js';
import { MmogitError } from '../../src/errors.js';
import { canonicalBytes } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { decodeEntry, signEntry } from '../../src/memory/entry.js';
import type { ByteChannel } from '../../src/transport/byte-channel.js';
import {
  type FuzzTarget,
  hostileBytes,
  must,
  target,
  text,
  utf8,
  verdict,
  verdictAsync,
} from './fuzz-kit.js';

const WIRE = JSON.parse(readFileSync(new URL('../vectors/wire/wire.json', import.meta.url), 'utf8'));
const alice = AgentKey.fromSeed(Buffer.from(WIRE.keys.alice.seed, 'hex'));
const bob = AgentKey.fromSeed(Buffer.from(WIRE.keys.bob.seed, 'hex'));

// ── message and ack frames ──────────────────────────────────────────────────────────────────────────

const V2 = signMessageV2(alice, bob.onion, {
  type: 'task-proposal',
  body: { task: 'index', n: [1, 2.5, null] },
});
const FRAME_SEEDS = [
  utf8(WIRE.messageFrames.msg),
  utf8(WIRE.messageFrames.ack),
  encodeFrame({ t: 'msg', m: V2.message, sig: V2.sig } as never),
  utf8('{"t":"err","id":"00112233445566778899aabbccddeeff","code":"ERR_TOO_LARGE","message":"no"}'),
  utf8('{"t":"ping","n":"0011223344556677"}'),
];
const ORIGINALS = new Set(
  FRAME_SEEDS.slice(0, 3).map((b) => {
    const f = decodeFrame(b, 1 << 20, parseAnyEnvelope) as { m?: unknown; a?: unknown };
    return Buffer.from(canonicalBytes((f.m ?? f.a) as never)).toString('hex');
  }),
);

const messageFrames = target({
  name: 'message and ack frames (v1, v2)',
  input: hostileBytes(FRAME_SEEDS, 1200),
  check(bytes) {
    const r = verdict(() => decodeFrame(bytes, 64 * 1024, parseAnyEnvelope));
    if (!r.accepted) {
      must(['ERR_BAD_FRAME', 'ERR_TOO_LARGE'].includes(r.error.code), `frame refused with ${r.error.code}`);
      return;
    }
    const f = r.value;
    let signed: unknown;
    if (f.t === 'msg') {
      const v = verdict(() => verifyAnyMessage({ message: f.m, sig: f.sig } as never));
      if (v.accepted && v.value) signed = f.m;
    }
    if (f.t === 'ack') {
      const v = verdict(() => verifyAck({ ack: f.a, sig: f.sig }));
      if (v.accepted && v.value) signed = f.a;
    }
    if (signed !== undefined) {
      const body = Buffer.from(canonicalBytes(signed as never)).toString('hex');
      must(ORIGINALS.has(body), 'a changed message or ack verified (forgery accepted)');
    }
  },
});

// ── advertisements and DHT records ──────────────────────────────────────────────────────────────────

const AD_NOW = WIRE.advertisement.input.now as number;
const AD_BYTES = utf8(WIRE.advertisement.bytes);
const AD_KEY = advertRecordKey(alice.publicKey);

const adverts = target({
  name: 'advertisements and DHT records',
  input: fc.tuple(hostileBytes([AD_BYTES], 4200), fc.boolean()),
  check([bytes, viaDht]) {
    const r = verdict(() => verifyAdvertisement(bytes, { now: AD_NOW + 60_000 }));
    if (!r.accepted) must(r.error.code === 'ERR_INVALID_RECORD', `advert refused with ${r.error.code}`);
    // Canonical JSON and a signature over it: one advert, one encoding.
    else
      must(Buffer.from(r.value.bytes).equals(Buffer.from(AD_BYTES)), 'a changed advert verified (forgery)');
    if (viaDht) {
      // The DHT validator runs at the current time: the vector advert is long expired, so it must refuse all.
      const d = verdict(() => advertValidator(AD_KEY, bytes));
      must(!d.accepted, 'DHT validator accepted an expired or changed record');
      if (!d.accepted) must(d.error.code === 'ERR_INVALID_RECORD', `DHT record refused with ${d.error.code}`);
    }
  },
});

// ── memory entries ──────────────────────────────────────────────────────────────────────────────────

const ENTRY_SEEDS = [
  utf8(WIRE.memoryEntry.file),
  signEntry(bob, 'post', { text: 'a post', tags: ['a'] }, { visibility: 'public' }).bytes,
];
const ENTRY_ORIGINALS = new Set(ENTRY_SEEDS.map((b) => decodeEntry(b).id));

const memoryEntries = target({
  name: 'memory entries',
  input: hostileBytes(ENTRY_SEEDS, 1500),
  check(bytes) {
    // decodeEntry never throws for bad data: it reports it (verified: false, problem).
    const r = verdict(() => decodeEntry(bytes));
    must(r.accepted, `decodeEntry threw ${r.accepted ? '' : r.error.code}`);
    if (r.accepted && r.value.verified) {
      must(ENTRY_ORIGINALS.has(r.value.id), 'a changed entry verified (forgery accepted)');
    }
  },
});

// ── A2A sender proofs ───────────────────────────────────────────────────────────────────────────────

const HOST = `${bob.onion}`;
const A2A_NOW = 1_800_000_000_000;
const A2A_MESSAGE: Message = userMessage('hello', { a: 1 });
const PROVED = signMessageProof(A2A_MESSAGE, alice, HOST, A2A_NOW);
const A2A_SEED = utf8(JSON.stringify(PROVED));
const A2A_SIGNED = JSON.stringify([PROVED.messageId, messageContent(PROVED)]);

const a2aProofs = target({
  name: 'A2A messages with sender proofs',
  input: hostileBytes([A2A_SEED], 800),
  check(bytes) {
    let message: Message;
    try {
      message = JSON.parse(text(bytes));
    } catch {
      return; // the SDK's JSON-RPC layer refuses it before us
    }
    if (typeof message !== 'object' || message === null) return;
    const r = verdict(() => new ProofChecker(HOST).check(message, A2A_NOW));
    if (!r.accepted) {
      must(
        ['ERR_BAD_SIGNATURE', 'ERR_INVALID_ARGUMENT'].includes(r.error.code),
        `proof refused ${r.error.code}`,
      );
      return;
    }
    if (r.value === null) return; // no proof: the message is anonymous, nothing is claimed
    const content = verdict(() => JSON.stringify([message.messageId, messageContent(message)]));
    must(r.value === alice.onion, 'proof accepted for another sender');
    must(content.accepted && content.value === A2A_SIGNED, 'a changed A2A message kept its proof (forgery)');
  },
});

// ── Direct messaging preface (docs/protocol.md §5.11): the first bytes any stranger sends to port 4002 ─────────

const PREFACE_SEEDS = [encodePreface('/mmogit/msg/2.0.0'), encodePreface('/mmogit/msg/1.0.0')];

/** A ByteChannel over fixed bytes: what a stream that sent them and then ended reads like. */
function bytesChannel(bytes: Uint8Array): ByteChannel & { consumed(): number } {
  let at = 0;
  return {
    async readExactly(n) {
      if (at + n > bytes.length) {
        throw new MmogitError('ERR_CONNECTION_CLOSED', `closed after ${bytes.length - at} of ${n} bytes`);
      }
      at += n;
      return bytes.subarray(at - n, at);
    },
    async write() {},
    async close() {},
    abort() {},
    consumed: () => at,
  };
}

const directPreface = target({
  name: 'direct messaging preface',
  async: true,
  input: hostileBytes(PREFACE_SEEDS, 120),
  async check(bytes) {
    const ch = bytesChannel(bytes);
    const r = await verdictAsync(() => readPreface(ch));
    // never reads past the preface's fixed bound, whatever it is sent
    must(ch.consumed() <= 17 + MAX_PREFACE_PROTOCOL, `read ${ch.consumed()} bytes of a preface`);
    if (!r.accepted) {
      must(
        r.error.code === 'ERR_BAD_FRAME' || r.error.code === 'ERR_CONNECTION_CLOSED',
        `preface refused with ${r.error.code}`,
      );
      return;
    }
    // accepted: exactly a protocol id, and the bytes encode it back
    must(/^\/[\x21-\x7e]{1,63}$/.test(r.value), `accepted a preface naming ${JSON.stringify(r.value)}`);
    must(
      Buffer.from(encodePreface(r.value)).equals(Buffer.from(bytes.subarray(0, ch.consumed()))),
      'accepted a preface that is not the encoding of its protocol',
    );
  },
});

export const RECORD_TARGETS: readonly FuzzTarget[] = [
  messageFrames,
  adverts,
  memoryEntries,
  a2aProofs,
  directPreface,
];
