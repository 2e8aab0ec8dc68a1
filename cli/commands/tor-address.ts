import { loadIdentity } from '../../src/identity/store.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { configDirOf } from './_context.js';

/** `mmogit tor address`: the onion derived from the stored key; needs no tor and no network. */
export default async function torAddress(args: GlobalOptions): Promise<CommandResult> {
  const key = await loadIdentity(configDirOf(args));
  return { data: { onion: key.onion, pubkey: key.publicKeyHex }, human: key.onion };
}
