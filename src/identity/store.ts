import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
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
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await chmod(configDir, 0o700);
}

/**
 * Writes `data` to `path` atomically with `mode`: a temp file created exclusively with that mode, fsynced,
 * then renamed over the target, so a crash leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
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
  await writeFileAtomic(path, `${body}\n`, 0o600);
}

/**
 * Loads the identity from `configDir`. Refuses (ERR_INSECURE_PERMISSIONS) a key file that group or others can
 * access, like ssh does, and checks the stored public key against the seed.
 */
export async function loadIdentity(configDir: string): Promise<AgentKey> {
  const dirStat = await stat(configDir).catch(() => null);
  if (!dirStat?.isDirectory()) {
    throw new MmogitError(
      'ERR_CONFIG_DIR_MISSING',
      `config dir ${configDir} does not exist (run \`mmogit init\`)`,
      {
        details: { configDir },
      },
    );
  }
  const path = identityPath(configDir);
  const fileStat = await stat(path).catch(() => null);
  if (!fileStat) {
    throw new MmogitError('ERR_IDENTITY_MISSING', `no identity in ${configDir} (run \`mmogit init\`)`, {
      details: { configDir },
    });
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
