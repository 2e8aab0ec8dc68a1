// Bringing an identity over from RCALabs/mmogit (Rust): its `.seed` file, as its `src/identity.rs` writes it (the
// phrase, single spaces, no newline, mode 0600), read by the SDK and by `mmogit init --from-seed-file`.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entropyToMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import {
  AgentKey,
  loadIdentity,
  parseRustSeedFile,
  RESTORE_WORD_COUNTS,
  readRustSeedFile,
  SEED_FILE_MAX_BYTES,
} from '../../src/identity/index.js';
import { runCli } from '../helpers/cli.js';

const { vectors } = JSON.parse(
  readFileSync(new URL('../vectors/identity/bip39-ed25519-onion.json', import.meta.url), 'utf8'),
) as { vectors: { words: number; mnemonic: string; ed25519PublicKeyHex: string; onion: string }[] };
const byLength = (n: number) => vectors.find((v) => v.words === n)!;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-rust-seed-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let files = 0;
/** A `.seed` file in its own dir with `content` and `mode` (Rust: `fs::write` then `set_permissions(0o600)`). */
async function seedFile(content: string | Uint8Array, mode = 0o600): Promise<string> {
  const dir = join(root, `rust-${files++}`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, '.seed');
  await writeFile(path, content);
  await chmod(path, mode);
  return path;
}

/** Every word of `text` (3+ letters), to check that nothing of a file reaches an error. */
const wordsOf = (text: string) => [...new Set(text.split(/[^a-z]+/i).filter((w) => w.length >= 3))];

async function refusal(path: string): Promise<{ code: string; message: string; json: string }> {
  try {
    await readRustSeedFile(path);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message, json: JSON.stringify(e) };
  }
  throw new Error('the seed file was accepted');
}

describe('parseRustSeedFile', () => {
  it.each(RESTORE_WORD_COUNTS)('reads a %i-word phrase exactly as Rust writes it', (n) => {
    const v = byLength(n);
    expect(parseRustSeedFile(v.mnemonic)).toBe(v.mnemonic);
  });

  it('skips # comment lines and blank lines, and tolerates CRLF, a BOM and a trailing newline', () => {
    const v = byLength(24);
    const text = `\uFEFF# mmogit identity\r\n# created 2025-06-01\r\n\r\n  ${v.mnemonic}  \r\n\r\n`;
    expect(parseRustSeedFile(text)).toBe(v.mnemonic);
  });

  it('joins a phrase written over several lines', () => {
    const words = byLength(24).mnemonic.split(' ');
    const text = [0, 6, 12, 18].map((i) => words.slice(i, i + 6).join(' ')).join('\n');
    expect(parseRustSeedFile(text)).toBe(byLength(24).mnemonic);
  });

  it('any valid phrase of any accepted length, written as Rust writes it, reads back (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 20, 24, 28, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.boolean(),
        (entropy, withComments) => {
          const phrase = entropyToMnemonic(entropy, wordlist);
          const text = withComments ? `# a comment\n${phrase}\n# another\n` : phrase;
          expect(parseRustSeedFile(text)).toBe(phrase);
        },
      ),
      { numRuns: 40 },
    );
  });

  it.each([
    ['only comments', '# nothing here\n# at all\n'],
    ['an empty file', ''],
    ['a bad checksum', Array(24).fill('zoo').join(' ')],
    ['a wrong word count', byLength(24).mnemonic.split(' ').slice(0, 20).join(' ')],
    ['words outside the list', 'correct horse battery staple tomato pickle'],
  ])('refuses %s with ERR_INVALID_SEED_FILE', (_name, text) => {
    expect(() => parseRustSeedFile(text)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_SEED_FILE' }));
  });

  it('refuses a Rust non-BIP39 (any-string mode) file and says why', () => {
    const text =
      '# WARNING: Non-BIP39 phrase used!\n# Entropy: ~71 bits\n# Generated: 2025-06-01 12:00:00 UTC\nhunter2hunter2';
    let error: unknown;
    try {
      parseRustSeedFile(text);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_INVALID_SEED_FILE', details: { reason: 'non-bip39' } });
    expect((error as Error).message).toMatch(/SHA-256/);
    expect((error as Error).message).not.toContain('hunter2');
  });
});

describe('readRustSeedFile', () => {
  it('returns the phrase of a 0600 file Rust wrote', async () => {
    const v = byLength(18);
    expect(await readRustSeedFile(await seedFile(v.mnemonic))).toBe(v.mnemonic);
  });

  it('refuses a file group or others can read (ERR_INSECURE_PERMISSIONS), quoting none of it', async () => {
    for (const mode of [0o644, 0o640, 0o604]) {
      const path = await seedFile(byLength(24).mnemonic, mode);
      const r = await refusal(path);
      expect(r.code).toBe('ERR_INSECURE_PERMISSIONS');
      expect(r.message).toContain('chmod 600');
      for (const w of wordsOf(byLength(24).mnemonic)) expect(r.message + r.json).not.toContain(w);
    }
  });

  it('refuses a missing path, a directory, a FIFO, a huge file and bytes that are not UTF-8', async () => {
    expect((await refusal(join(root, 'no-such-dir', '.seed'))).code).toBe('ERR_INVALID_SEED_FILE');
    const dir = join(root, 'a-dir');
    await mkdir(dir, { mode: 0o700 });
    expect(await refusal(dir)).toMatchObject({ code: 'ERR_INVALID_SEED_FILE' });
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    expect(await refusal(fifo)).toMatchObject({ code: 'ERR_INVALID_SEED_FILE' }); // and it did not block
    const huge = await seedFile(`${byLength(24).mnemonic}\n${'#'.repeat(SEED_FILE_MAX_BYTES)}`);
    expect(await refusal(huge)).toMatchObject({ code: 'ERR_INVALID_SEED_FILE' });
    const binary = await seedFile(new Uint8Array([0xff, 0xfe, 0x61, 0x80, 0x0a]));
    expect(await refusal(binary)).toMatchObject({ code: 'ERR_INVALID_SEED_FILE' });
  });
});

describe('mmogit init --from-seed-file / --seed-phrase (the real binary)', () => {
  /** Runs init into a fresh config dir; returns the run and the dir. */
  async function init(args: string[]) {
    const home = join(root, `home-${files++}`);
    const r = await runCli(['init', '--json', '--config-dir', home, ...args]);
    return { r, home };
  }

  it.each([
    ['without comment lines', (p: string) => p],
    ['with comment lines', (p: string) => `# mmogit identity — keep it secret\n# created 2025-06-01\n${p}\n`],
  ])('a Rust .seed file %s gives the same onion, and the phrase is copied nowhere', async (_n, shape) => {
    const v = byLength(24);
    const path = await seedFile(shape(v.mnemonic));
    const { r, home } = await init(['--from-seed-file', path]);
    expect(r.exitCode).toBe(0);
    expect(r.json()).toEqual({ pubkey: v.ed25519PublicKeyHex, onion: v.onion });
    expect(r.stderr).toBe(''); // 24 words: no warning
    expect((await loadIdentity(home)).onion).toBe(v.onion);
    // identity.key keeps the seed only; no file in the config dir holds a word of the phrase (the memory repo is
    // git objects, compressed; they never see the phrase either, since only the key reaches them).
    const stored = await readFile(join(home, 'identity.key'), 'utf8');
    for (const w of wordsOf(v.mnemonic)) expect(stored).not.toContain(w);
    expect(await readdir(home)).not.toContain('.seed');
    expect(await readFile(path, 'utf8')).toBe(shape(v.mnemonic)); // the Rust file is untouched
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it.each([12, 15, 18, 21])(
    'a %i-word phrase restores the independent vector, with one warning line on stderr',
    async (n) => {
      const v = byLength(n);
      for (const args of [
        ['--seed-phrase', v.mnemonic],
        ['--from-seed-file', await seedFile(v.mnemonic)],
      ]) {
        const { r } = await init(args);
        expect(r.exitCode).toBe(0);
        expect(r.json()).toEqual({ pubkey: v.ed25519PublicKeyHex, onion: v.onion });
        const lines = r.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`warning: a ${n}-word phrase has ${(n * 32) / 3} bits of entropy`);
      }
    },
  );

  it('a malformed file is exit 3 (ERR_INVALID_SEED_FILE) and shows no part of its content', async () => {
    const secretish = '# kitten kitten\norbit galaxy pioneer nebula quasar comet';
    const path = await seedFile(secretish);
    for (const extra of [[], ['-v']]) {
      const { r, home } = await init(['--from-seed-file', path, ...extra]);
      expect(r.exitCode).toBe(EXIT_CODES.config);
      expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_INVALID_SEED_FILE');
      for (const w of wordsOf(secretish)) expect(r.stdout + r.stderr).not.toContain(w);
      await expect(stat(join(home, 'identity.key'))).rejects.toThrow(); // nothing written
    }
  });

  it('a file readable by others is exit 3 (ERR_INSECURE_PERMISSIONS)', async () => {
    const { r } = await init(['--from-seed-file', await seedFile(byLength(24).mnemonic, 0o644)]);
    expect(r.exitCode).toBe(EXIT_CODES.config);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_INSECURE_PERMISSIONS');
  });

  it('--seed-phrase and --from-seed-file together are a usage error', async () => {
    const v = byLength(24);
    const { r } = await init(['--seed-phrase', v.mnemonic, '--from-seed-file', await seedFile(v.mnemonic)]);
    expect(r.exitCode).toBe(EXIT_CODES.usage);
    expect(r.stdout + r.stderr).not.toContain(v.mnemonic.split(' ')[0]!);
  });

  it('an AgentKey from the file equals one from the typed phrase', async () => {
    const v = byLength(15);
    const key = AgentKey.fromMnemonic(await readRustSeedFile(await seedFile(`# c\n${v.mnemonic}`)));
    expect(key.onion).toBe(v.onion);
  });
});
