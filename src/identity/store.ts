import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileDurable } from '../_fs.js';
import { MmogitError } from '../errors.js';
import { AgentKey } from './keys.js';

/** File names inside the config dir. Everything an agent keeps lives under one directory. */
export const CONFIG_FILES = {
  identity: 'identity.key',
  memory: 'memory',
  tor: 'tor',
  daemonSocket: 'daemon.sock',
  daemonState: 'daemon.json',
  outbox: 'outbox',
  config: 'config.json',
} as const;

const IDENTITY_FORMAT = 'mmogit-identity';
const IDENTITY_VERSION = 1;

/** ERR_CONFIG_INVALID for a path of the config dir that exists but is not a directory. */
export function notADirectory(path: string, what: string): MmogitError {
  return new MmogitError('ERR_CONFIG_INVALID', `${what} ${path} is not a directory`, {
    details: { path },
  });
}

/** ERR_CONFIG_INVALID for a config dir whose path runs through a file (`<file>/sub`). */
export function partOfPathIsAFile(configDir: string): MmogitError {
  return new MmogitError('ERR_CONFIG_INVALID', `config dir ${configDir}: a part of its path is a file`, {
    details: { path: configDir },
  });
}

/** ERR_CONFIG_DIR_MISSING: the config dir does not exist (only `mmogit init` makes one). */
export function configDirMissing(configDir: string): MmogitError {
  return new MmogitError(
    'ERR_CONFIG_DIR_MISSING',
    `config dir ${configDir} does not exist (run \`mmogit init\`)`,
    {
      details: { configDir },
    },
  );
}

/**
 * The config dir: `--config-dir` if given, else `$MMOGIT_HOME`, else `~/.mmogit`.
 */
export function resolveConfigDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit && explicit.length > 0) return resolve(explicit);
  if (env.MMOGIT_HOME && env.MMOGIT_HOME.length > 0) return resolve(env.MMOGIT_HOME);
  return join(homedir(), '.mmogit');
}

export function identityPath(configDir: string): string {
  return join(configDir, CONFIG_FILES.identity);
}

/** Creates the config dir with mode 0700 (and tightens an existing one we are about to put a key in). */
export async function ensureConfigDir(configDir: string): Promise<void> {
  await mkdir(configDir, { recursive: true, mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') throw notADirectory(configDir, 'config dir');
    if (e.code !== 'ENOTDIR') throw e;
    throw partOfPathIsAFile(configDir);
  });
  await chmod(configDir, 0o700);
}

export interface SaveIdentityOptions {
  /** Replace an existing identity (the old key is gone for good). */
  force?: boolean;
}

/** Persists the identity's seed as `identity.key` (mode 0600) in a 0700 config dir. */
export async function saveIdentity(
  configDir: string,
  key: AgentKey,
  options: SaveIdentityOptions = {},
): Promise<void> {
  await ensureConfigDir(configDir);
  const path = identityPath(configDir);
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (exists && !options.force) {
    throw new MmogitError(
      'ERR_IDENTITY_EXISTS',
      `an identity already exists in ${configDir} (use --force to replace it)`,
      {
        details: { configDir },
      },
    );
  }
  const seed = key.exportSeed();
  const body = JSON.stringify({
    format: IDENTITY_FORMAT,
    version: IDENTITY_VERSION,
    algorithm: 'ed25519',
    seed: Buffer.from(seed).toString('hex'),
    pubkey: key.publicKeyHex,
    onion: key.onion,
  });
  seed.fill(0);
  await writeFileDurable(path, `${body}\n`, { mode: 0o600 });
}

/**
 * Loads the identity from `configDir`. Refuses (ERR_INSECURE_PERMISSIONS) a key file that group or others can
 * access, like ssh does, and checks the stored public key against the seed.
 */
export async function loadIdentity(configDir: string): Promise<AgentKey> {
  const dirStat = await stat(configDir).catch((e: NodeJS.ErrnoException) => {
    // ENOTDIR: a part of the path is a file, which no `mmogit init` can fix (it refuses the same path).
    if (e.code === 'ENOTDIR') throw partOfPathIsAFile(configDir);
    return null;
  });
  if (dirStat && !dirStat.isDirectory()) throw notADirectory(configDir, 'config dir');
  if (!dirStat) {
    throw configDirMissing(configDir);
  }
  const path = identityPath(configDir);
  const fileStat = await stat(path).catch(() => null);
  if (!fileStat) {
    throw new MmogitError('ERR_IDENTITY_MISSING', `no identity in ${configDir} (run \`mmogit init\`)`, {
      details: { configDir },
    });
  }
  if (!fileStat.isFile()) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path} is not a file`, { details: { path } });
  }
  if ((fileStat.mode & 0o077) !== 0) {
    throw new MmogitError(
      'ERR_INSECURE_PERMISSIONS',
      `${path} is accessible by other users (mode ${(fileStat.mode & 0o777).toString(8)}); run \`chmod 600 ${path}\``,
      { details: { path, mode: (fileStat.mode & 0o777).toString(8) } },
    );
  }
  const text = await readFile(path, 'utf8');
  let parsed: { format?: unknown; version?: unknown; seed?: unknown; pubkey?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path} is not valid JSON`, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path} does not hold an identity object`);
  }
  if (parsed.format !== IDENTITY_FORMAT || parsed.version !== IDENTITY_VERSION) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path} has an unknown format or version`);
  }
  if (typeof parsed.seed !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.seed)) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path} has no valid seed`);
  }
  const seed = Uint8Array.from(Buffer.from(parsed.seed, 'hex'));
  const key = AgentKey.fromSeed(seed);
  seed.fill(0);
  if (typeof parsed.pubkey === 'string' && parsed.pubkey !== key.publicKeyHex) {
    throw new MmogitError('ERR_IDENTITY_CORRUPT', `${path}: stored public key does not match the seed`);
  }
  return key;
}
