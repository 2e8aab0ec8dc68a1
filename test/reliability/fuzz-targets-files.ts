// Fuzz target for the file-transfer records (docs/protocol.md §9): data and control frames and the signed
// offer inside them. A record is refused with ERR_BAD_FRAME or ERR_TOO_LARGE, or parsed within its bounds; an
// offer that verifies is the original one (no forgery), and a stored name never leaves its directory.
import { readFileSync } from 'node:fs';
import {
  decodeFileRecord,
  encodeFileControl,
  encodeFileData,
  FILE_CHUNK_BYTES,
  MAX_FILE_NAME_BYTES,
  parseFileOffer,
  signFileOffer,
  storedFileName,
  verifyFileOffer,
} from '../../src/agent/files-wire.js';
import { canonicalBytes } from '../../src/identity/canonical.js';
import { AgentKey } from '../../src/identity/keys.js';
import { type FuzzTarget, hostileBytes, must, target, verdict } from './fuzz-kit.js';

const WIRE = JSON.parse(readFileSync(new URL('../vectors/wire/wire.json', import.meta.url), 'utf8'));
const alice = AgentKey.fromSeed(Buffer.from(WIRE.keys.alice.seed, 'hex'));
const bob = AgentKey.fromSeed(Buffer.from(WIRE.keys.bob.seed, 'hex'));

const OFFER = signFileOffer(
  alice,
  bob.onion,
  { name: '../report.pdf', size: 123_456, sha256: 'ab'.repeat(32) },
  { id: '00112233445566778899aabbccddeeff', timestamp: 1_800_000_000_000 },
);
const SEEDS = [
  encodeFileControl({ t: 'offer', m: OFFER.message, sig: OFFER.sig }),
  encodeFileControl({ t: 'accept', offset: 65_534 }),
  encodeFileControl({ t: 'ack', offset: 1_048_576 }),
  encodeFileControl({ t: 'end' }),
  encodeFileControl({ t: 'err', code: 'ERR_FILE_TOO_LARGE', message: 'no' }),
  encodeFileData(Uint8Array.of(1, 2, 3)),
];
const ORIGINAL = Buffer.from(canonicalBytes({ ...OFFER.message })).toString('hex');

const fileRecords = target({
  name: 'file-transfer records and offers',
  input: hostileBytes(SEEDS, 1200),
  check(bytes) {
    const r = verdict(() => decodeFileRecord(bytes));
    if (!r.accepted) {
      must(['ERR_BAD_FRAME', 'ERR_TOO_LARGE'].includes(r.error.code), `record refused with ${r.error.code}`);
      return;
    }
    if (r.value.kind === 'data') {
      must(r.value.chunk.length <= FILE_CHUNK_BYTES, 'a data chunk over the chunk size was accepted');
      return;
    }
    const f = r.value.frame;
    if (f.t === 'accept' || f.t === 'ack')
      must(Number.isSafeInteger(f.offset) && f.offset >= 0, 'bad offset');
    if (f.t !== 'offer') return;
    const o = verdict(() => parseFileOffer(f.m, f.sig));
    if (!o.accepted) {
      must(o.error.code === 'ERR_BAD_FRAME', `offer refused with ${o.error.code}`);
      return;
    }
    const body = o.value.message.body;
    must(Buffer.byteLength(body.name, 'utf8') <= MAX_FILE_NAME_BYTES, 'an over-long name was accepted');
    const stored = storedFileName(o.value.message);
    must(
      /^[0-9a-f]{32}-[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(stored) && !stored.includes('..'),
      `unsafe name ${stored}`,
    );
    if (verifyFileOffer(o.value)) {
      const signed = Buffer.from(canonicalBytes({ ...o.value.message })).toString('hex');
      must(signed === ORIGINAL, 'a changed file offer verified (forgery accepted)');
    }
  },
});

export const FILE_TARGETS: readonly FuzzTarget[] = [fileRecords];
