// Pinned wire bytes: a memory entry, an advertisement, a message and an ack frame, and a whole hybrid PQ
// handshake with its first traffic frames, all from fixed keys, clocks and randomness (README.md here says how
// they were made). Each vector is checked twice: the code must still produce exactly these bytes, and the bytes
// must mean what docs/protocol.md says, recomputed here with independent code (@noble/curves, @noble/hashes,
// OpenSSL's AES-GCM through node:crypto, real git) that follows the document rather than src/.
import { execFileSync } from 'node:child_process';
import { createDecipheriv, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { describe, expect, it, vi } from 'vitest';

// Fixed randomness: while `drbg.on`, node:crypto's randomBytes returns SHA-256(label ‖ counter) blocks, and logs
// the sizes asked for. Everything else in the handshake is deterministic (Ed25519 signatures are, RFC 8032).
const drbg = vi.hoisted(() => ({ on: false, counter: 0, sizes: [] as number[] }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  const randomBytes = (n: number) => {
    if (!drbg.on) return real.randomBytes(n);
    drbg.sizes.push(n);
    const out = Buffer.alloc(n);
    for (let at = 0; at < n; at += 32) {
      const c = Buffer.alloc(4);
      c.writeUInt32BE(drbg.counter++);
      real.createHash('sha256').update(DRBG_LABEL).update(c).digest().copy(out, at);
    }
    return out;
  };
  // Node 24's own ML-KEM draws its encapsulation randomness inside OpenSSL, where this DRBG cannot reach: the
  // pinned handshake needs FIPS 203's encapsulation with `m` from randomBytes, so the module is shown a Node
  // without ML-KEM and src/pqc/_mlkem.ts picks noble (test/pqc/mlkem.test.ts shows the two agree: the same keys
  // from the same seed, each decapsulating the other's ciphertexts). The keys are named, so a Node that lacks them does not trip the mock's missing-export check.
  const noKem = { encapsulate: undefined, decapsulate: undefined };
  return { ...real, ...noKem, default: { ...real, ...noKem, randomBytes }, randomBytes };
});
const DRBG_LABEL = 'mmogit wire vectors v1';

const { signAck, signMessage, encodeFrame } = await import('../../../src/agent/messaging-envelope.js');
const { createAdvertisement } = await import('../../../src/discovery/advertisement.js');
const { AgentKey } = await import('../../../src/identity/keys.js');
const { memoryBody, signEntry } = await import('../../../src/memory/entry.js');
const { acceptSession, initiateSession } = await import('../../../src/pqc/handshake.js');
const { channelPair } = await import('../../pqc/_net.js');

const here = dirname(fileURLToPath(import.meta.url));
const FILE = join(here, 'wire.json');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** The fixed identities: seeds are SHA-256 of a name. */
const seedOf = (name: string) =>
  new Uint8Array(createHash('sha256').update(`mmogit vector ${name}`).digest());
const alice = AgentKey.fromSeed(seedOf('alice'));
const bob = AgentKey.fromSeed(seedOf('bob'));

// ---- the vectors as the code makes them ---------------------------------------------------------------------

function makeEntry() {
  const input = {
    type: 'observation' as const,
    content: 'the bootstrap agent answered over its onion',
    tags: ['vector'],
  };
  const { id, bytes } = signEntry(
    alice,
    'memory',
    { ...memoryBody(input) },
    { createdAt: '2026-01-01T00:00:00.000Z' },
  );
  return { input, createdAt: '2026-01-01T00:00:00.000Z', id, file: new TextDecoder().decode(bytes) };
}

function makeAdvert() {
  const input = {
    services: ['memory_sync'],
    name: 'alice',
    description: 'a test vector',
    port: 4001,
    now: 1_800_000_000_000,
    ttlMs: 30 * 60_000,
    agentVersion: '0.0.0-vector',
  };
  return { input, bytes: new TextDecoder().decode(createAdvertisement(alice, input).bytes) };
}

function makeFrames() {
  const msg = signMessage(alice, bob.onion, 'hello, bob', {
    id: '00112233445566778899aabbccddeeff',
    timestamp: 1_800_000_000_000,
  });
  const ack = signAck(bob, msg.message.id, 1_800_000_000_500);
  return {
    msg: new TextDecoder().decode(encodeFrame({ t: 'msg', m: msg.message, sig: msg.sig })),
    ack: new TextDecoder().decode(encodeFrame({ t: 'ack', a: ack.ack, sig: ack.sig })),
  };
}

/** Both directions of a hybrid handshake and one payload each way, over real loopback TCP. */
async function makeHandshake() {
  const pair = await channelPair();
  const i2r: Uint8Array[] = [];
  const r2i: Uint8Array[] = [];
  const tap = (ch: typeof pair.client, log: Uint8Array[]): typeof pair.client => ({
    readExactly: (n, o) => ch.readExactly(n, o),
    write: (b, o) => {
      log.push(new Uint8Array(b));
      return ch.write(b, o);
    },
    close: () => ch.close(),
    abort: (e) => ch.abort(e),
  });
  drbg.on = true;
  drbg.counter = 0;
  drbg.sizes = [];
  try {
    const [si, sr] = await Promise.all([
      initiateSession(tap(pair.client, i2r), alice, { expectedPeer: bob.onion }),
      acceptSession(tap(pair.server, r2i), bob),
    ]);
    drbg.on = false;
    await si.send(utf8('hello from alice'));
    expect(new TextDecoder().decode((await sr.receive()) ?? new Uint8Array())).toBe('hello from alice');
    await sr.send(utf8('hello from bob'));
    expect(new TextDecoder().decode((await si.receive()) ?? new Uint8Array())).toBe('hello from bob');
    expect(hex(si.transcriptHash)).toBe(hex(sr.transcriptHash));
    return {
      drbg: { label: DRBG_LABEL, sizes: [...drbg.sizes] },
      initiatorToResponder: hex(cat(...i2r)),
      responderToInitiator: hex(cat(...r2i)),
      transcriptHash: hex(si.transcriptHash),
      payloads: { initiator: 'hello from alice', responder: 'hello from bob' },
    };
  } finally {
    drbg.on = false;
    await pair.close();
  }
}

async function makeAll() {
  return {
    about:
      'mmogit wire vectors, version 1. Made by `MMOGIT_WRITE_VECTORS=1 npx vitest run test/vectors/wire`; checked by the same test without the variable. See README.md.',
    keys: {
      alice: { seed: hex(seedOf('alice')), publicKey: alice.publicKeyHex, onion: alice.onion },
      bob: { seed: hex(seedOf('bob')), publicKey: bob.publicKeyHex, onion: bob.onion },
    },
    memoryEntry: makeEntry(),
    advertisement: makeAdvert(),
    messageFrames: makeFrames(),
    pqHandshake: await makeHandshake(),
  };
}

type Vectors = Awaited<ReturnType<typeof makeAll>>;

// ---- independent readers, from docs/protocol.md ---------------------------------------------------------------

/** RFC 8785 for what these objects hold (strings, integers, a few decimals, arrays, objects): sorted keys. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** docs/protocol.md §2: Ed25519 over "mmogit-sig-v1" 0x00 context 0x00 message. */
function signed(context: string, message: Uint8Array): Uint8Array {
  return cat(utf8(`mmogit-sig-v1\0${context}\0`), message);
}

/** rend-spec-v3 §6: base32(pubkey ‖ SHA3-256(".onion checksum" ‖ pubkey ‖ 0x03)[0..2] ‖ 0x03) + ".onion". */
function onionOf(pub: Uint8Array): string {
  const sum = sha3_256(cat(utf8('.onion checksum'), pub, Uint8Array.of(3))).subarray(0, 2);
  const bytes = cat(pub, sum, Uint8Array.of(3));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[Number.parseInt(bits.slice(i, i + 5), 2)];
  return `${out}.onion`;
}

const stored = (): Vectors => JSON.parse(readFileSync(FILE, 'utf8')) as Vectors;

describe('wire vectors', () => {
  it('the code still produces exactly the pinned bytes', async () => {
    const now = await makeAll();
    if (process.env.MMOGIT_WRITE_VECTORS === '1') writeFileSync(FILE, `${JSON.stringify(now, null, 2)}\n`);
    expect(now).toEqual(stored());
  });

  it('keys: the onions are the rend-spec-v3 encoding of the Ed25519 keys of the seeds', () => {
    for (const k of Object.values(stored().keys)) {
      expect(hex(ed25519.getPublicKey(unhex(k.seed)))).toBe(k.publicKey);
      expect(onionOf(unhex(k.publicKey))).toBe(k.onion);
    }
  });

  it('memory entry (§3): canonical JSON + newline, id = SHA-256 of the file, signed, a git blob', () => {
    const v = stored();
    const e = v.memoryEntry;
    const parsed = JSON.parse(e.file) as Record<string, unknown>;
    expect(e.file).toBe(`${canonical(parsed)}\n`);
    expect(Object.keys(parsed).sort().join(',')).toBe(
      'author,body,createdAt,format,kind,signature,version,visibility',
    );
    expect([parsed.format, parsed.version, parsed.kind, parsed.author]).toEqual([
      'mmogit-entry',
      1,
      'memory',
      v.keys.alice.publicKey,
    ]);
    expect(createHash('sha256').update(e.file).digest('hex')).toBe(e.id);
    const { signature, ...unsigned } = parsed;
    const ok = ed25519.verify(
      unhex(signature as string),
      signed('memory-entry/v1', utf8(canonical(unsigned))),
      unhex(v.keys.alice.publicKey),
    );
    expect(ok).toBe(true);
    // real git stores it as this blob, and the store's tree path is entries/<h0>/<h1>/<h2>/<id>.json
    const blob = execFileSync('git', ['hash-object', '--stdin'], { input: e.file, encoding: 'utf8' }).trim();
    expect(blob).toBe(
      createHash('sha1')
        .update(`blob ${Buffer.byteLength(e.file)}\0${e.file}`)
        .digest('hex'),
    );
  });

  it('advertisement (§6): canonical, bound to its onion, signed over everything but the signature', () => {
    const v = stored();
    const ad = JSON.parse(v.advertisement.bytes) as Record<string, unknown>;
    expect(v.advertisement.bytes).toBe(canonical(ad));
    expect(ad.version).toBe(1);
    expect(ad.pubkey).toBe(v.keys.alice.publicKey);
    expect(ad.onion).toBe(onionOf(unhex(ad.pubkey as string)));
    expect(ad.addrs).toEqual([`/onion3/${(ad.onion as string).slice(0, 56)}:4001`]);
    expect([ad.issuedAt, ad.expiresAt]).toEqual([1_800_000_000_000, 1_800_000_000_000 + 30 * 60_000]);
    const { signature, ...unsigned } = ad;
    const ok = ed25519.verify(
      unhex(signature as string),
      signed('advertisement/v1', utf8(canonical(unsigned))),
      unhex(v.keys.alice.publicKey),
    );
    expect(ok).toBe(true);
  });

  it('message and ack frames (§5.2, §5.3): JSON with exactly the listed members, signatures in base64', () => {
    const v = stored();
    const msg = JSON.parse(v.messageFrames.msg) as { t: string; m: Record<string, unknown>; sig: string };
    expect(Object.keys(msg).sort()).toEqual(['m', 'sig', 't']);
    expect(msg.t).toBe('msg');
    expect(Object.keys(msg.m).sort()).toEqual(['from', 'id', 'text', 'timestamp', 'to', 'v']);
    expect([msg.m.from, msg.m.to]).toEqual([v.keys.alice.onion, v.keys.bob.onion]);
    expect(msg.sig).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(
      ed25519.verify(
        Buffer.from(msg.sig, 'base64'),
        signed('message/v1', utf8(canonical(msg.m))),
        unhex(v.keys.alice.publicKey),
      ),
    ).toBe(true);
    const ack = JSON.parse(v.messageFrames.ack) as { t: string; a: Record<string, unknown>; sig: string };
    expect(ack.t).toBe('ack');
    expect(ack.a).toMatchObject({ v: 1, id: msg.m.id, status: 'delivered', by: v.keys.bob.onion });
    expect(
      ed25519.verify(
        Buffer.from(ack.sig, 'base64'),
        signed('message-ack/v1', utf8(canonical(ack.a))),
        unhex(v.keys.bob.publicKey),
      ),
    ).toBe(true);
  });

  it('PQ handshake (§4): every byte, key and frame recomputed from the fixed randomness', () => {
    const v = stored();
    const h = v.pqHandshake;
    // the randomness, in the order the protocol draws it: initiator e_I secret, ML-KEM keygen seed, nonce_I;
    // responder e_R secret, ML-KEM encapsulation message, nonce_R
    expect(h.drbg.sizes).toEqual([32, 64, 32, 32, 32, 32]);
    const block = (n: number) =>
      createHash('sha256')
        .update(DRBG_LABEL)
        .update(Buffer.from([0, 0, 0, n]))
        .digest();
    const r: Uint8Array[] = [];
    let counter = 0;
    for (const size of h.drbg.sizes) {
      const out = Buffer.alloc(size);
      for (let at = 0; at < size; at += 32) block(counter++).copy(out, at);
      r.push(new Uint8Array(out));
    }
    const [eISecret, kemSeed, nonceI, eRSecret, kemM, nonceR] = r as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];

    const i2r = unhex(h.initiatorToResponder);
    const r2i = unhex(h.responderToInitiator);
    const msg1 = i2r.subarray(0, 1256);
    const msg3 = i2r.subarray(1256, 1376);
    const msg2 = r2i.subarray(0, 1272);
    // §4.2 headers and §4.3 layouts
    expect(hex(msg1.subarray(0, 8))).toBe('4d4d505101010100');
    expect(hex(msg2.subarray(0, 8))).toBe('4d4d505101020100');
    expect(hex(msg3.subarray(0, 8))).toBe('4d4d505101030000');
    const kem = ml_kem768.keygen(kemSeed);
    expect(hex(msg1.subarray(8, 40))).toBe(hex(nonceI));
    expect(hex(msg1.subarray(40, 72))).toBe(hex(x25519.getPublicKey(eISecret)));
    expect(hex(msg1.subarray(72))).toBe(hex(kem.publicKey));
    const enc = ml_kem768.encapsulate(kem.publicKey, kemM);
    expect(hex(msg2.subarray(8, 40))).toBe(hex(nonceR));
    expect(hex(msg2.subarray(40, 72))).toBe(hex(x25519.getPublicKey(eRSecret)));
    expect(hex(msg2.subarray(72, 1160))).toBe(hex(enc.cipherText));

    // §4.4 transcript and key schedule
    const label = utf8('mmogit-pq-handshake/v1');
    const thA = sha256(cat(label, msg1, msg2.subarray(0, 1160)));
    const thB = sha256(cat(label, msg1, msg2, msg3.subarray(0, 8)));
    const thF = sha256(cat(label, msg1, msg2, msg3));
    expect(hex(thF)).toBe(h.transcriptHash);
    const ssX = x25519.getSharedSecret(eISecret, msg2.subarray(40, 72));
    const prkHs = extract(sha256, cat(enc.sharedSecret, ssX, thA), label);
    const key = (prk: Uint8Array, info: string) => expand(sha256, prk, utf8(info), 32);
    const open = (k: Uint8Array, nonce: Buffer, aad: Uint8Array, sealed: Uint8Array) => {
      const d = createDecipheriv('aes-256-gcm', k, nonce);
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - 16));
      return new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]));
    };
    const zero = Buffer.alloc(12);
    const sealedR = open(key(prkHs, 'mmogit-pq/v1 hs r2i'), zero, thA, msg2.subarray(1160));
    const pkR = sealedR.subarray(0, 32);
    expect(hex(pkR)).toBe(v.keys.bob.publicKey);
    expect(
      ed25519.verify(
        sealedR.subarray(32),
        signed('pq-handshake/v1', cat(utf8('responder\0'), thA, pkR)),
        pkR,
      ),
    ).toBe(true);
    const sealedI = open(key(prkHs, 'mmogit-pq/v1 hs i2r'), zero, thB, msg3.subarray(8));
    const pkI = sealedI.subarray(0, 32);
    expect(hex(pkI)).toBe(v.keys.alice.publicKey);
    expect(
      ed25519.verify(
        sealedI.subarray(32),
        signed('pq-handshake/v1', cat(utf8('initiator\0'), thB, pkI, pkR)),
        pkI,
      ),
    ).toBe(true);

    // §4.5 the first traffic frame each way: len ‖ AES-256-GCM(k, 0^4 ‖ counter, AAD = len)(type ‖ data) ‖ tag
    const prkTr = extract(sha256, key(prkHs, 'mmogit-pq/v1 chain'), thF);
    const frame = (bytes: Uint8Array, k: Uint8Array) => {
      const len = Buffer.from(bytes).readUInt32BE(0);
      expect(bytes.length).toBe(4 + len);
      const plain = open(k, Buffer.alloc(12), bytes.subarray(0, 4), bytes.subarray(4));
      return { type: plain[0], text: new TextDecoder().decode(plain.subarray(1)) };
    };
    expect(frame(i2r.subarray(1376), key(prkTr, 'mmogit-pq/v1 traffic i2r'))).toEqual({
      type: 1,
      text: h.payloads.initiator,
    });
    expect(frame(r2i.subarray(1272), key(prkTr, 'mmogit-pq/v1 traffic r2i'))).toEqual({
      type: 1,
      text: h.payloads.responder,
    });
  });
});
