import { pbkdf2Sync } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha3_256 } from '@noble/hashes/sha3.js';

const b32 = (bytes) => {
  const A = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0,
    val = 0,
    out = '';
  for (const b of bytes) {
    val = (val << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += A[(val >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += A[(val << (5 - bits)) & 31];
  return out;
};
const onion = (pk) => {
  const cs = sha3_256(new Uint8Array([...Buffer.from('.onion checksum'), ...pk, 3])).slice(0, 2);
  return b32(new Uint8Array([...pk, ...cs, 3])) + '.onion';
};
const phrases = [
  Array(23).fill('abandon').join(' ') + ' art',
  'legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title',
  'letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless',
];
const out = {
  source:
    'Computed independently of src/ by test/vectors/identity/README.md procedure: BIP39 seed = PBKDF2-HMAC-SHA512(phrase, "mnemonic", 2048) via node:crypto; Ed25519 public key via @noble/curves from seed[0:32]; onion via @noble/hashes sha3_256 and a hand-written base32 (rend-spec-v3 §6). Phrases are BIP39 reference vectors (trezor/python-mnemonic vectors.json, 24-word entries).',
  vectors: [],
};
for (const p of phrases) {
  const seed = pbkdf2Sync(p, 'mnemonic', 2048, 64, 'sha512');
  const sk = seed.subarray(0, 32);
  const pk = ed25519.getPublicKey(sk);
  out.vectors.push({
    mnemonic: p,
    bip39SeedHex: seed.toString('hex'),
    ed25519PublicKeyHex: Buffer.from(pk).toString('hex'),
    onion: onion(pk),
  });
}
console.log(JSON.stringify(out, null, 2));
