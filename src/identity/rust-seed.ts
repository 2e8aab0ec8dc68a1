import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { MmogitError } from '../errors.js';
import { NOT_BIP39_REASON, normaliseMnemonic } from './mnemonic.js';

/**
 * Reading the `~/.mmogit/.seed` file of RCALabs/mmogit (Rust), so an identity made there can be brought over.
 *
 * What Rust writes (`src/identity.rs`): the phrase itself, space-separated words, no newline, mode 0600; its
 * non-BIP39 mode writes `# WARNING: Non-BIP39 phrase used!`, two more `#` lines and the raw string. Rust reads
 * the file back as the whole text, trimmed, parsed as an English BIP39 phrase.
 *
 * We read the words of every line that is neither blank nor a `#` comment, check them as a BIP39 phrase (any
 * length Rust accepts), and hand back the normalised phrase for the caller to derive the key from. Nothing here
 * writes the phrase anywhere, and no error message or detail quotes any part of the file.
 */

/** A real `.seed` is one phrase (≤ 24 × 8 letters + spaces) and maybe a few comment lines; more is not one. */
export const SEED_FILE_MAX_BYTES = 4096;

/** Why a seed file was refused (`details.reason` of `ERR_INVALID_SEED_FILE`). */
export type SeedFileProblem =
  | 'unreadable'
  | 'not-a-file'
  | 'too-large'
  | 'not-text'
  | 'no-phrase'
  | 'non-bip39'
  | 'invalid-phrase';

function refuse(path: string, reason: SeedFileProblem, what: string, cause?: unknown): MmogitError {
  return new MmogitError('ERR_INVALID_SEED_FILE', `${path}: ${what}`, {
    details: { path, reason },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * The normalised BIP39 phrase in the text of a Rust `.seed` file (`path` only names it in errors).
 * Throws `ERR_INVALID_SEED_FILE` (config) when the text holds no valid phrase; the message says what is wrong
 * (word count, unknown words, checksum) without showing any of it.
 */
export function parseRustSeedFile(text: string, path = '.seed'): string {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n|\r/)
    .map((l) => l.trim());
  const comments = lines.filter((l) => l.startsWith('#'));
  const phraseLines = lines.filter((l) => l.length > 0 && !l.startsWith('#'));
  // Rust's any-string mode marks its file; say why it cannot come over instead of a word-count complaint.
  if (comments.some((l) => /non-bip39/i.test(l))) {
    throw refuse(path, 'non-bip39', `holds a Rust mmogit non-BIP39 identity: ${NOT_BIP39_REASON}`);
  }
  if (phraseLines.length === 0) throw refuse(path, 'no-phrase', 'holds no seed phrase line');
  try {
    return normaliseMnemonic(phraseLines.join(' '));
  } catch (e) {
    // normaliseMnemonic's messages count words and never quote them (see its doc), so they are safe to keep.
    throw refuse(path, 'invalid-phrase', (e as Error).message);
  }
}

/**
 * Reads a Rust mmogit `.seed` file and returns its normalised BIP39 phrase (derive the key with
 * `AgentKey.fromMnemonic`, or pass it as `Agent.init({ mnemonic })`; only the seed is ever stored).
 *
 * Refuses, like ssh and our own `identity.key`, a file that group or others can access
 * (`ERR_INSECURE_PERMISSIONS`: Rust writes 0600, so a looser mode means it was copied or changed, and the
 * phrase may have been read); refuses anything but a regular file of at most {@link SEED_FILE_MAX_BYTES} bytes
 * of UTF-8 (`ERR_INVALID_SEED_FILE`). Opened non-blocking, so a FIFO at the path cannot hang the caller.
 *
 * @example
 * const phrase = await readRustSeedFile(join(homedir(), '.mmogit', '.seed'));
 * const { agent } = await Agent.init({ configDir, mnemonic: phrase });
 */
export async function readRustSeedFile(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw refuse(path, 'unreadable', `cannot be read (${code})`, e);
  }
  let bytes: Buffer;
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw refuse(path, 'not-a-file', 'is not a regular file');
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8);
      throw new MmogitError(
        'ERR_INSECURE_PERMISSIONS',
        `${path} is accessible by other users (mode ${mode}); run \`chmod 600 ${path}\`, and if others could read it, treat the phrase as exposed`,
        { details: { path, mode } },
      );
    }
    if (st.size > SEED_FILE_MAX_BYTES) {
      throw refuse(path, 'too-large', `is larger than a seed file can be (${SEED_FILE_MAX_BYTES} bytes)`);
    }
    // Read at most one byte past the limit: the size can change between stat and read.
    const buffer = Buffer.alloc(SEED_FILE_MAX_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > SEED_FILE_MAX_BYTES) {
      buffer.fill(0);
      throw refuse(path, 'too-large', `is larger than a seed file can be (${SEED_FILE_MAX_BYTES} bytes)`);
    }
    bytes = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  try {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw refuse(path, 'not-text', 'is not UTF-8 text');
    }
    return parseRustSeedFile(text, path);
  } finally {
    bytes.fill(0);
  }
}
