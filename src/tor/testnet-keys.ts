/**
 * Keys of a private Tor network's nodes, made by tor's own tools: a directory authority's v3 identity and
 * certificate with `tor-gencert` (tor-gencert(1)), and every server's relay identity with
 * `tor --list-fingerprint` (tor(1)).
 * @module
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { abortReason, MmogitError } from '../errors.js';

export function testnetError(
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): MmogitError {
  return new MmogitError('ERR_TESTNET', message, { details, cause });
}

/** Runs `file` to completion with `input` on stdin; typed errors for a missing binary, a failure, an abort. */
export function run(
  file: string,
  args: string[],
  input: string,
  signal: AbortSignal,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(file, args, { signal, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) {
        if (signal.aborted) reject(abortReason(signal, `${file}`));
        else
          reject(
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? new MmogitError('ERR_TOR_NOT_FOUND', `${file} not found`, { cause: err })
              : testnetError(
                  `${file} failed: ${String(stderr || stdout)
                    .trim()
                    .slice(-500)}`,
                  { file },
                  err,
                ),
          );
      } else resolvePromise({ stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(input);
  });
}

/** The tools that make keys and run nodes. */
export interface TestnetTools {
  tor: string;
  gencert: string;
  /** The empty regular file tor is given as defaults torrc and config file. */
  empty: string;
}

/**
 * Creates a relay's identity keys in `<dataDir>/keys` and returns its fingerprint (40 hex). tor prints
 * "<nick> XXXX XXXX …" as the last line of `--list-fingerprint`.
 */
export async function relayFingerprint(
  tools: Pick<TestnetTools, 'tor' | 'empty'>,
  dataDir: string,
  nickname: string,
  signal: AbortSignal,
): Promise<string> {
  const { stdout } = await run(
    tools.tor,
    [
      // tor refuses /dev/null as a config file; an empty regular file keeps /etc/tor/torrc out.
      '--defaults-torrc',
      tools.empty,
      '-f',
      tools.empty,
      '--list-fingerprint',
      '--orport',
      '1',
      '--dirserver',
      `x 127.0.0.1:1 ${'f'.repeat(40)}`,
      '--datadirectory',
      dataDir,
      '--nickname',
      nickname,
    ],
    '',
    signal,
  );
  const last = stdout.trim().split('\n').pop() ?? '';
  const fp = last.slice(nickname.length).replace(/\s+/g, '');
  if (!last.startsWith(nickname) || !/^[0-9A-F]{40}$/.test(fp)) {
    throw testnetError(`unexpected tor --list-fingerprint output for ${nickname}`, { output: last });
  }
  return fp;
}

/**
 * Makes a directory authority's keys in `<dataDir>/keys` (a new identity key valid 12 months, an empty
 * passphrase on fd 0) and returns its v3 identity (the certificate's `fingerprint`) and relay fingerprint.
 */
export async function authorityKeys(
  tools: TestnetTools,
  dataDir: string,
  nickname: string,
  dirPort: number,
  signal: AbortSignal,
): Promise<{ v3ident: string; fingerprint: string }> {
  const keys = join(dataDir, 'keys');
  await mkdir(keys, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  await run(
    tools.gencert,
    [
      '--create-identity-key',
      '-m',
      '12',
      '-a',
      `127.0.0.1:${dirPort}`,
      '-i',
      join(keys, 'authority_identity_key'),
      '-s',
      join(keys, 'authority_signing_key'),
      '-c',
      join(keys, 'authority_certificate'),
      '--passphrase-fd',
      '0',
    ],
    '\n',
    signal,
  );
  const cert = await readFile(join(keys, 'authority_certificate'), 'utf8');
  const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
  if (!v3ident) throw testnetError(`no fingerprint in ${nickname}'s authority certificate`);
  return { v3ident, fingerprint: await relayFingerprint(tools, dataDir, nickname, signal) };
}
