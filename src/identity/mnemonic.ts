import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { MmogitError } from '../errors.js';

/** The length of every phrase mmogit generates: 24 words, 256 bits of entropy (as RCALabs/mmogit generates). */
export const MNEMONIC_WORDS = 24;

/**
 * The phrase lengths accepted on restore: every length BIP39 defines (§"Generating the mnemonic": 128 to 256
 * bits of entropy in steps of 32, plus a checksum of ENT/32 bits, in 11-bit words), as RCALabs/mmogit accepts.
 */
export const RESTORE_WORD_COUNTS = [12, 15, 18, 21, 24] as const;

/** A fresh 24-word English BIP39 phrase (256 bits of entropy from the OS CSPRNG). */
export function newMnemonic(): string {
  return generateMnemonic(wordlist, 256);
}

// Appended when the input is not BIP39 at all: Rust mmogit would fall back to its any-string mode here, and a
// user bringing such an identity over should learn why it cannot come (docs/decisions.md).
export const NOT_BIP39_REASON =
  'mmogit refuses Rust mmogit’s any-string mode: its key is a plain SHA-256 of the text, so anyone can test guesses against the public onion address';

/**
 * Normalises spacing/case and checks the word count (12, 15, 18, 21 or 24), the words and the BIP39 checksum.
 * Messages never quote the phrase: they count words, so a typo shown in a log or terminal leaks nothing.
 */
export function normaliseMnemonic(phrase: string): string {
  if (typeof phrase !== 'string')
    throw new MmogitError('ERR_INVALID_MNEMONIC', 'seed phrase must be a string');
  const words = phrase.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (!(RESTORE_WORD_COUNTS as readonly number[]).includes(words.length)) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      `seed phrase must have 12, 15, 18, 21 or 24 words, got ${words.length} (${NOT_BIP39_REASON})`,
      { details: { words: words.length } },
    );
  }
  const unknown = words.filter((w) => !wordlist.includes(w));
  if (unknown.length > 0) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      `seed phrase has ${unknown.length} word(s) not in the BIP39 English list (${NOT_BIP39_REASON})`,
      { details: { words: words.length, unknownWords: unknown.length } },
    );
  }
  const normalised = words.join(' ');
  if (!validateMnemonic(normalised, wordlist)) {
    throw new MmogitError(
      'ERR_INVALID_MNEMONIC',
      'seed phrase checksum is wrong (a word is mistyped or out of order)',
      { details: { words: words.length } },
    );
  }
  return normalised;
}

/**
 * Bits of entropy in a valid phrase of `words` words: 11 bits a word less the checksum (BIP39: ENT = words × 32 / 3),
 * so 12 → 128, 15 → 160, 18 → 192, 21 → 224, 24 → 256.
 */
export function mnemonicEntropyBits(words: number): number {
  return (words * 32) / 3;
}

/**
 * The 32-byte Ed25519 seed for a phrase, exactly as RCALabs/mmogit (Rust) derives it:
 * BIP39 seed = PBKDF2-HMAC-SHA512(phrase, "mnemonic", 2048) with an empty passphrase (BIP39 §"From mnemonic to
 * seed"), and the Ed25519 secret key is its first 32 bytes. Any accepted length derives the same way.
 */
export function seedFromMnemonic(phrase: string): Uint8Array {
  const full = mnemonicToSeedSync(normaliseMnemonic(phrase), '');
  const seed = full.slice(0, 32);
  full.fill(0);
  return seed;
}
