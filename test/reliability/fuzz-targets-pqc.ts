// Fuzz targets: the hybrid PQ handshake (both roles, fed the real captured handshake bytes of
// test/vectors/wire, mutated), PQ session frames (real sealed frames, mutated), and the mesh's cells, relay
// messages and circuit handshake.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { AgentKey } from '../../src/identity/keys.js';
import { BODY_LEN, CMD_CREATE, CMD_RELAY_2K, CMD_RELAY_128, MSG_DATA } from '../../src/mesh/_wire.js';
import {
  encodeCell,
  encodeData,
  encodeEnd,
  encodeExtend,
  encodeMessage,
  encodeSwitch,
  parseCells,
  parseData,
  parseEnd,
  parseExtend,
  parseMessage,
  parseSwitch,
} from '../../src/mesh/cells.js';
import { answerCreate, startCreate } from '../../src/mesh/handshake.js';
import { FRAME_END, FrameCipher } from '../../src/pqc/frames.js';
import { acceptSession, initiateSession } from '../../src/pqc/index.js';
import { Session } from '../../src/pqc/session.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { type FuzzTarget, hostileBytes, must, target, utf8, verdict, verdictAsync } from './fuzz-kit.js';

const WIRE = JSON.parse(readFileSync(new URL('../vectors/wire/wire.json', import.meta.url), 'utf8'));
const alice = AgentKey.fromSeed(Buffer.from(WIRE.keys.alice.seed, 'hex'));
const bob = AgentKey.fromSeed(Buffer.from(WIRE.keys.bob.seed, 'hex'));
const TO_RESPONDER = new Uint8Array(Buffer.from(WIRE.pqHandshake.initiatorToResponder, 'hex'));
const TO_INITIATOR = new Uint8Array(Buffer.from(WIRE.pqHandshake.responderToInitiator, 'hex'));

/** A real ByteChannel over a stream that delivers `bytes` in `chunks` pieces, then ends; writes vanish. */
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

// The captured bytes are a replay against a fresh handshake (its randomness differs), so a session must never
// be established from them, mutated or not: an accepted one would be a forgery of the other side's identity.
const pqResponder = target({
  name: 'PQ handshake, responder (hello, finish)',
  async: true,
  input: fc.tuple(hostileBytes([TO_RESPONDER], 3000), fc.integer({ min: 1, max: 4 })),
  async check([bytes, chunks]) {
    const r = await verdictAsync(() => acceptSession(feeding(bytes, chunks), bob, { timeoutMs: 5_000 }));
    must(!r.accepted, 'responder established a session from replayed/mutated bytes');
  },
});

const pqInitiator = target({
  name: 'PQ handshake, initiator (response)',
  async: true,
  input: fc.tuple(hostileBytes([TO_INITIATOR], 3000), fc.integer({ min: 1, max: 4 })),
  async check([bytes, chunks]) {
    const r = await verdictAsync(() =>
      initiateSession(feeding(bytes, chunks), alice, { expectedPeer: bob.onion, timeoutMs: 5_000 }),
    );
    must(!r.accepted, 'initiator established a session from replayed/mutated bytes');
  },
});

// Real frames: three payloads sealed under one key, as a live session would send them.
const FRAME_KEY = new Uint8Array(randomBytes(32));
const PAYLOADS = [utf8('{"t":"ping","n":"0011223344556677"}'), new Uint8Array(300).fill(0x61), utf8('x')];
const FRAME_SEED = (() => {
  const c = new FrameCipher(FRAME_KEY.slice());
  return new Uint8Array(Buffer.concat(PAYLOADS.map((p) => c.seal(FRAME_END, p))));
})();

const pqFrames = target({
  name: 'PQ session frames',
  async: true,
  input: hostileBytes([FRAME_SEED], 1200),
  async check(bytes) {
    const session = new Session({
      channel: feeding(bytes, 2),
      peer: { publicKey: alice.publicKey, onion: alice.onion },
      suite: 'hybrid-x25519-mlkem768',
      transcriptHash: new Uint8Array(32),
      handshakeMs: 0,
      sender: new FrameCipher(new Uint8Array(32)),
      receiver: new FrameCipher(FRAME_KEY.slice()),
      maxPayload: 64 * 1024,
    });
    for (let i = 0; i < PAYLOADS.length + 1; i++) {
      const r = await verdictAsync(() => session.receive({ timeoutMs: 5_000 }));
      if (!r.accepted || r.value === null) break;
      // AEAD: whatever is accepted is exactly what was sealed, in order.
      must(
        Buffer.from(r.value).equals(Buffer.from(PAYLOADS[i] ?? [])),
        `frame ${i} accepted with other bytes`,
      );
    }
    session.close?.();
  },
});

// ── mesh: link cells, relay messages and their data layouts ─────────────────────────────────────────

const CELL_SEEDS = [
  encodeCell(7, CMD_RELAY_128, new Uint8Array(BODY_LEN[CMD_RELAY_128] as number).fill(3)),
  Buffer.concat([encodeCell(1, 0, new Uint8Array(4)), encodeCell(0x80000001, 3, Uint8Array.of(2))]),
].map((b) => new Uint8Array(b));
const MESSAGE_SEEDS = [
  encodeMessage(BODY_LEN[CMD_RELAY_128] as number, MSG_DATA, 3, encodeData(0, utf8('hello'))),
  encodeMessage(BODY_LEN[CMD_RELAY_2K] as number, 4, 9, encodeEnd(1, 1234)),
].map((b) => new Uint8Array(b));
const DATA_SEEDS = [
  encodeExtend({
    publicKey: bob.publicKey,
    addr: '127.0.0.1:4001',
    create: new Uint8Array(BODY_LEN[CMD_CREATE] as number),
  }),
  encodeEnd(2, 99),
  encodeData(5, utf8('abc')),
  encodeSwitch([
    { stream: 1, received: 10, endReceived: false },
    { stream: 2, received: 2 ** 40, endReceived: true },
  ]),
].map((b) => new Uint8Array(b));

const meshCells = target({
  name: 'mesh cells and relay messages',
  input: fc.tuple(hostileBytes([...CELL_SEEDS, ...MESSAGE_SEEDS, ...DATA_SEEDS], 2200), fc.nat(5)),
  check([bytes, which]) {
    const parsers = [parseCells, parseMessage, parseExtend, parseEnd, parseData, parseSwitch] as const;
    const r = verdict(() => (parsers[which] as (b: Uint8Array) => unknown)(bytes));
    if (!r.accepted) must(r.error.code === 'ERR_MESH', `mesh parser refused with ${r.error.code}`);
  },
  // Seed 20261203: parseMessage read a 7-byte plaintext's length field past its end (RangeError).
  regressions: [[Uint8Array.from([0, 0, 0, 99, 162, 99, 162]), 1]],
});

// ── mesh circuit handshake: CREATE at the relay, CREATED at the client ──────────────────────────────

const REAL_CREATE = new Uint8Array(startCreate(bob.publicKey).body);

const meshCreate = target({
  name: 'mesh CREATE (relay side)',
  input: hostileBytes([REAL_CREATE], 1300),
  check(bytes) {
    const r = verdict(() => answerCreate(bob, bytes));
    if (!r.accepted) must(r.error.code === 'ERR_HANDSHAKE', `CREATE refused with ${r.error.code}`);
  },
});

const meshCreated = target({
  name: 'mesh CREATED (client side, signed by the relay)',
  input: fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 0, maxLength: 4 }),
  check(flips) {
    const pending = startCreate(bob.publicKey);
    const created = Buffer.from(answerCreate(bob, pending.body).created);
    const original = Buffer.from(created);
    for (const [at, bit] of flips)
      created[at % created.length] = (created[at % created.length] as number) ^ (1 << bit);
    const r = verdict(() => pending.finish(created));
    if (!r.accepted) must(r.error.code === 'ERR_HANDSHAKE', `CREATED refused with ${r.error.code}`);
    // The relay's signature covers the whole CREATED body: a changed one is never accepted.
    else must(created.equals(original), 'client accepted a CREATED the relay did not sign');
  },
});

// A CREATED signed by someone else than the relay the client chose (a relay impersonated).
const meshCreatedImpostor = target({
  name: 'mesh CREATED from an impostor relay',
  input: fc.constant(null),
  check() {
    const pending = startCreate(bob.publicKey);
    const r = verdict(() => pending.finish(answerCreate(alice, pending.body).created));
    must(!r.accepted, 'client accepted a CREATED signed by another key');
  },
});

export const PQC_TARGETS: readonly FuzzTarget[] = [
  pqResponder,
  pqInitiator,
  pqFrames,
  meshCells,
  meshCreate,
  meshCreated,
  meshCreatedImpostor,
];
