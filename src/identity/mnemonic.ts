import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { MmogitError } from '../errors.js';

/** Rust mmogit uses 24-word (256-bit entropy) English BIP39 phrases. */
export const MNEMONIC_WORDS = 24;

/** A fresh 24-word English BIP39 phrase (256 bits of entropy from the OS CSPRNG). */
export function newMnemonic(): string {
  return generateMnemonic(wordlist, 256);
}

/** Normalises spacing/case and checks word count, words and the BIP39 checksum. */
export function normaliseMnemonic(phrase: string): string {
  if (typeof phrase !== 'string')
    throw new MmogitError('ERR_INVALID_MNEMONIC', 'seed phrase must be a string');
  const words = phrase.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length !== MNEMONIC_WORDS) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      `seed phrase must have ${MNEMONIC_WORDS} words, got ${words.length}`,
      { details: { words: words.length } },
    );
  }
  const unknown = words.filter((w) => !wordlist.includes(w));
  if (unknown.length > 0) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      `seed phrase has ${unknown.length} word(s) not in the BIP39 list`,
      {
        details: { unknownWords: unknown.length },
      },
    );
  }
  const normalised = words.join(' ');
  if (!validateMnemonic(normalised, wordlist)) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      'seed phrase checksum is wrong (a word is mistyped or out of order)',
    );
  }
  return normalised;
}

/**
 * The 32-byte Ed25519 seed for a phrase, exactly as RCALabs/mmogit (Rust) derives it:
 * BIP39 seed = PBKDF2-HMAC-SHA512(phrase, "mnemonic", 2048) with an empty passphrase (BIP39 §"From mnemonic to
 * seed"), and the Ed25519 secret key is its first 32 bytes.
 */
export function seedFromMnemonic(phrase: string): Uint8Array {
  const full = mnemonicToSeedSync(normaliseMnemonic(phrase), '');
  const seed = full.slice(0, 32);
  full.fill(0);
  return seed;
}
