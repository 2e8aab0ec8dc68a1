import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentKey,
  canonicalJson,
  expandedSecretKey,
  hsSecretKeyFile,
  loadIdentity,
  mnemonicEntropyBits,
  normaliseMnemonic,
  onionFromPublicKey,
  parseOnionAddress,
  RESTORE_WORD_COUNTS,
  resolveConfigDir,
  SIGNING_CONTEXTS,
  saveIdentity,
  signedBytes,
  verifySignature,
} from '../../src/identity/index.js';

const vectorsDir = new URL('../vectors/identity/', import.meta.url);
const bip39 = JSON.parse(readFileSync(new URL('bip39-ed25519-onion.json', vectorsDir), 'utf8')) as {
  vectors: { words: number; mnemonic: string; ed25519PublicKeyHex: string; onion: string }[];
};
const rfc8032 = JSON.parse(readFileSync(new URL('rfc8032.json', vectorsDir), 'utf8')) as {
  vectors: { secretKeyHex: string; publicKeyHex: string; messageHex: string; signatureHex: string }[];
};
const onionExamples = JSON.parse(readFileSync(new URL('onion-examples.json', vectorsDir), 'utf8')) as {
  valid: string[];
};

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

describe('BIP39 → Ed25519 → onion (RCALabs/mmogit derivation)', () => {
  it.each(bip39.vectors)('matches the independent derivation for the $words-word "$mnemonic"', (v) => {
    const key = AgentKey.fromMnemonic(v.mnemonic);
    expect(key.publicKeyHex).toBe(v.ed25519PublicKeyHex);
    expect(key.onion).toBe(v.onion);
  });

  it('has vectors for every length BIP39 defines', () => {
    expect([...new Set(bip39.vectors.map((v) => v.words))].sort((a, b) => a - b)).toEqual([
      ...RESTORE_WORD_COUNTS,
    ]);
    for (const v of bip39.vectors) expect(v.mnemonic.split(' ')).toHaveLength(v.words);
  });

  it('accepts extra spaces and upper case in a phrase', () => {
    const v = bip39.vectors[0]!;
    const messy = `  ${v.mnemonic.toUpperCase().split(' ').join('   ')} `;
    expect(AgentKey.fromMnemonic(messy).publicKeyHex).toBe(v.ed25519PublicKeyHex);
  });

  it('generates 24-word phrases that round-trip', () => {
    const { key, mnemonic } = AgentKey.generate();
    expect(mnemonic.split(' ')).toHaveLength(24);
    expect(AgentKey.fromMnemonic(mnemonic).onion).toBe(key.onion);
  });

  it('gives 128 to 256 bits of entropy for 12 to 24 words', () => {
    expect(RESTORE_WORD_COUNTS.map(mnemonicEntropyBits)).toEqual([128, 160, 192, 224, 256]);
  });

  const twelve = bip39.vectors.find((v) => v.words === 12)!.mnemonic.split(' ');
  it.each([
    ['13 words', [...twelve, 'abandon'].join(' ')],
    ['11 words', twelve.slice(0, 11).join(' ')],
    ['an unknown word', `${Array(23).fill('abandon').join(' ')} notaword`],
    ['a bad 24-word checksum', Array(24).fill('abandon').join(' ')],
    ['a bad 12-word checksum', Array(12).fill('abandon').join(' ')],
    ['a bad 15-word checksum', Array(15).fill('zoo').join(' ')],
    ['a non-BIP39 string (Rust mmogit’s any-string mode)', 'correct horse battery staple'],
    ['empty', ''],
  ])('rejects %s with ERR_INVALID_MNEMONIC, quoting none of it', (_name, phrase) => {
    let error: unknown;
    try {
      normaliseMnemonic(phrase);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_INVALID_MNEMONIC' });
    const shown = `${(error as Error).message} ${JSON.stringify(error)}`;
    for (const word of new Set(phrase.split(/\s+/).filter((w) => w.length >= 3))) {
      if (!['seed', 'phrase', 'words', 'mode'].includes(word)) expect(shown).not.toContain(word);
    }
  });

  it('says why a non-BIP39 phrase is refused', () => {
    expect(() => normaliseMnemonic('correct horse battery staple')).toThrow(/any-string mode/);
  });
});

describe('Ed25519 signing', () => {
  it.each(rfc8032.vectors)('RFC 8032 §7.1 $name: public key and raw signature', (v) => {
    const key = AgentKey.fromSeed(unhex(v.secretKeyHex));
    expect(key.publicKeyHex).toBe(v.publicKeyHex);
    // Our sign() is domain-separated; the raw RFC signature is checked through noble on the same key.
    expect(hex(ed25519.sign(unhex(v.messageHex), unhex(v.secretKeyHex)))).toBe(v.signatureHex);
  });

  it('Node crypto and noble agree on domain-separated signatures (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        (seed, msg) => {
          const key = AgentKey.fromSeed(seed);
          const sig = key.sign(SIGNING_CONTEXTS.memoryEntry, msg);
          const bytes = signedBytes(SIGNING_CONTEXTS.memoryEntry, msg);
          expect(hex(ed25519.sign(bytes, seed))).toBe(hex(sig));
          expect(ed25519.verify(sig, bytes, key.publicKey)).toBe(true);
          expect(verifySignature(SIGNING_CONTEXTS.memoryEntry, msg, sig, key.publicKey)).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a signature for one context does not verify under another', () => {
    const key = AgentKey.random();
    const msg = new TextEncoder().encode('hello');
    const sig = key.sign(SIGNING_CONTEXTS.message, msg);
    expect(verifySignature(SIGNING_CONTEXTS.message, msg, sig, key.publicKey)).toBe(true);
    expect(verifySignature(SIGNING_CONTEXTS.memoryEntry, msg, sig, key.publicKey)).toBe(false);
    expect(verifySignature(SIGNING_CONTEXTS.advertisement, msg, sig, key.publicKey)).toBe(false);
  });

  it('verify returns false for malformed keys and signatures', () => {
    const key = AgentKey.random();
    const msg = new Uint8Array([1, 2, 3]);
    const sig = key.sign(SIGNING_CONTEXTS.message, msg);
    expect(verifySignature(SIGNING_CONTEXTS.message, msg, sig.subarray(1), key.publicKey)).toBe(false);
    expect(verifySignature(SIGNING_CONTEXTS.message, msg, sig, new Uint8Array(31))).toBe(false);
    const flipped = Uint8Array.from(sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    expect(verifySignature(SIGNING_CONTEXTS.message, msg, flipped, key.publicKey)).toBe(false);
  });

  it('keeps the seed out of JSON and inspect output', () => {
    const key = AgentKey.fromSeed(new Uint8Array(32).fill(7));
    const seedHex = '07'.repeat(32);
    expect(JSON.stringify(key)).not.toContain(seedHex);
    expect(JSON.stringify(Object.entries(key))).not.toContain(seedHex);
  });
});

describe('v3 onion addresses (rend-spec-v3 §6)', () => {
  it.each(onionExamples.valid)('parses the published example %s', (addr) => {
    const parsed = parseOnionAddress(addr);
    expect(onionFromPublicKey(parsed.publicKey)).toBe(addr);
  });

  it('derivation and parsing round-trip for any key (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (pk) => {
        const onion = onionFromPublicKey(pk);
        expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
        expect(hex(parseOnionAddress(onion).publicKey)).toBe(hex(pk));
        expect(hex(parseOnionAddress(onion.slice(0, 56).toUpperCase()).publicKey)).toBe(hex(pk));
      }),
      { numRuns: 200 },
    );
  });

  const good = onionExamples.valid[0]!;
  it.each([
    ['too short', good.slice(0, 40)],
    ['not base32', `${good.slice(0, 55)}1.onion`],
    ['a bad checksum', `${good.slice(0, 52)}${good[52] === 'a' ? 'b' : 'a'}${good.slice(53)}`],
    ['a v2 address', 'expyuzz4wqqyqhjn.onion'],
    ['empty', ''],
  ])('rejects %s with ERR_INVALID_ONION', (_name, input) => {
    expect(() => parseOnionAddress(input)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ONION' }));
  });

  it('rejects a wrong version byte even with a matching checksum scheme', () => {
    // Flip the version character: the last base32 char encodes the version's low bits.
    const bad = `${good.slice(0, 55)}${good[55] === 'd' ? 'e' : 'd'}`;
    expect(() => parseOnionAddress(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ONION' }));
  });

  it('checks the onion ↔ public key binding', () => {
    const a = AgentKey.random();
    const b = AgentKey.random();
    expect(() => parseOnionAddress(a.onion, a.publicKey)).not.toThrow();
    expect(() => parseOnionAddress(a.onion, b.publicKey)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ONION' }),
    );
  });

  it('expanded secret is SHA-512(seed) clamped, and the key file has tor’s header', () => {
    const seed = unhex(rfc8032.vectors[0]!.secretKeyHex);
    const x = expandedSecretKey(seed);
    expect(x).toHaveLength(64);
    expect((x[0] as number) & 7).toBe(0);
    expect((x[31] as number) & 0xc0).toBe(0x40);
    const file = hsSecretKeyFile(seed);
    expect(file).toHaveLength(96);
    expect(Buffer.from(file.subarray(0, 29)).toString('ascii')).toBe('== ed25519v1-secret: type0 ==');
    expect(file.subarray(29, 32).every((b) => b === 0)).toBe(true);
  });
});

describe('canonical JSON', () => {
  it('sorts keys, drops undefined, has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 0.5, y: -1 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"d":{"y":-1,"z":0.5}}',
    );
  });
  it('is independent of key insertion order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(obj);
      }),
    );
  });
  it('refuses non-finite numbers', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('identity store', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'mmogit-id-'));
    dirs.push(d);
    return join(d, 'home');
  };

  it('saves with 0600 in a 0700 dir and loads the same key', async () => {
    const dir = await tmp();
    const key = AgentKey.random();
    await saveIdentity(dir, key);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600);
    expect((await loadIdentity(dir)).onion).toBe(key.onion);
  });

  it('refuses to overwrite without force', async () => {
    const dir = await tmp();
    await saveIdentity(dir, AgentKey.random());
    await expect(saveIdentity(dir, AgentKey.random())).rejects.toMatchObject({ code: 'ERR_IDENTITY_EXISTS' });
    const replacement = AgentKey.random();
    await saveIdentity(dir, replacement, { force: true });
    expect((await loadIdentity(dir)).onion).toBe(replacement.onion);
  });

  it('refuses a key file readable by others', async () => {
    const dir = await tmp();
    await saveIdentity(dir, AgentKey.random());
    await chmod(join(dir, 'identity.key'), 0o644);
    await expect(loadIdentity(dir)).rejects.toMatchObject({ code: 'ERR_INSECURE_PERMISSIONS' });
  });

  it('reports a missing config dir, a missing identity and a corrupt file', async () => {
    const dir = await tmp();
    await expect(loadIdentity(dir)).rejects.toMatchObject({ code: 'ERR_CONFIG_DIR_MISSING' });
    await saveIdentity(dir, AgentKey.random());
    await writeFile(join(dir, 'identity.key'), '{"format":"mmogit-identity","version":1,"seed":"zz"}', {
      mode: 0o600,
    });
    await expect(loadIdentity(dir)).rejects.toMatchObject({ code: 'ERR_IDENTITY_CORRUPT' });
    await rm(join(dir, 'identity.key'));
    await expect(loadIdentity(dir)).rejects.toMatchObject({ code: 'ERR_IDENTITY_MISSING' });
  });

  it('resolves the config dir from flag, env, then home', () => {
    expect(resolveConfigDir('/x/y', { MMOGIT_HOME: '/env' })).toBe('/x/y');
    expect(resolveConfigDir(undefined, { MMOGIT_HOME: '/env' })).toBe('/env');
    expect(resolveConfigDir(undefined, {})).toMatch(/\.mmogit$/);
  });
});
