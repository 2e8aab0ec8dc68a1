import { Agent } from '../../src/agent/agent.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

interface InitArgs extends GlobalOptions {
  seedPhrase?: string;
  force?: boolean;
}

/** `mmogit init [--seed-phrase "<24 words>"] [--force]` */
export default async function init(args: InitArgs): Promise<CommandResult> {
  const configDir = configDirOf(args);
  const { agent, mnemonic } = await Agent.init({
    configDir,
    ...(args.seedPhrase !== undefined ? { mnemonic: args.seedPhrase } : {}),
    force: args.force ?? false,
  });
  const data = {
    pubkey: agent.publicKeyHex,
    onion: agent.address,
    ...(mnemonic ? { mnemonic } : {}),
  };
  const lines = [
    `identity created in ${configDir}`,
    `onion:  ${agent.address}`,
    `pubkey: ${agent.publicKeyHex}`,
  ];
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
