import { Agent } from '../../src/agent/agent.js';
import { MmogitError } from '../../src/errors.js';
import {
  MNEMONIC_WORDS,
  mnemonicEntropyBits,
  normaliseMnemonic,
  readRustSeedFile,
} from '../../src/identity/index.js';
import { type CommandResult, type GlobalOptions, note } from '../output.js';
import { configDirOf } from './_context.js';

interface InitArgs extends GlobalOptions {
  seedPhrase?: string;
  fromSeedFile?: string;
  force?: boolean;
}

/**
 * `mmogit init [--seed-phrase "<12–24 words>" | --from-seed-file PATH] [--force]`: a new identity, or the one a
 * phrase (typed, or read from a Rust mmogit `.seed` file) gives. Only the seed is stored; the phrase is never
 * written anywhere, nor printed unless it was generated here.
 */
export default async function init(args: InitArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  if (args.fromSeedFile !== undefined && args.fromSeedFile.trim() === '') {
    // Read as a path, '' was reported as `: cannot be read (ENOENT)`.
    throw new MmogitError('ERR_INVALID_ARGUMENT', '--from-seed-file needs the path of a .seed file', {
      details: { flag: 'from-seed-file' },
    });
  }
  const restored =
    args.fromSeedFile !== undefined
      ? await readRustSeedFile(args.fromSeedFile)
      : args.seedPhrase !== undefined
        ? normaliseMnemonic(args.seedPhrase)
        : undefined;
  const { agent, mnemonic } = await Agent.init({
    configDir,
    ...(restored !== undefined ? { mnemonic: restored } : {}),
    force: args.force ?? false,
  });
  const words = restored?.split(' ').length ?? MNEMONIC_WORDS;
  if (words < MNEMONIC_WORDS) {
    // As Rust mmogit does: a shorter phrase is valid BIP39 and restores the same key, with less entropy.
    note(
      `mmogit: warning: a ${words}-word phrase has ${mnemonicEntropyBits(words)} bits of entropy, a 24-word one 256; ` +
        'the identity is restored as it is, but consider a new 24-word identity for a long-lived agent',
    );
  }
  const data = {
    pubkey: agent.publicKeyHex,
    onion: agent.address,
    ...(mnemonic ? { mnemonic } : {}),
  };
  const lines = [
    `identity ${restored !== undefined ? 'restored' : 'created'} in ${configDir}`,
    `onion:  ${agent.address}`,
    `pubkey: ${agent.publicKeyHex}`,
  ];
  if (args.fromSeedFile !== undefined) {
    lines.push(
      '',
      `Only the key's seed was stored; ${args.fromSeedFile} still holds the phrase in clear, and mmogit does not need it.`,
    );
  }
  if (mnemonic) {
    lines.push(
      '',
      'Your 24-word recovery phrase (shown once — write it down and keep it offline):',
      '',
      `  ${mnemonic}`,
      '',
    );
  }
  return { data, human: lines.join('\n') };
}
