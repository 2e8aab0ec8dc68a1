// Throwaway tors for tests. `offline`: DisableNetwork 1 (control port only; ADD_ONION works offline).
// `loopback`: network on, but the only directory authority is a fake one on 127.0.0.1 where nothing
// listens, so tor opens its SOCKS port yet never leaves loopback (and never bootstraps).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readControlPortFile } from '../../../src/tor/control/index.js';

const run = promisify(execFile);
export const TOR_BIN = process.env.MMOGIT_TOR ?? 'tor';

export interface TestTor {
  dir: string;
  dataDir: string;
  control: { host: string; port: number };
  cookieFile: string;
  controlSocket?: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  log: () => string;
  stop: () => Promise<void>;
}

export interface TestTorOptions {
  mode: 'offline' | 'loopback';
  password?: string;
  unixSocket?: boolean;
  /** Extra torrc lines. */
  extra?: string[];
}

export async function startTestTor(opts: TestTorOptions): Promise<TestTor> {
  const dir = await mkdtemp(join(tmpdir(), 'mmogit-tor-'));
  const dataDir = join(dir, 'data');
  const geoip = join(dir, 'geoip-empty');
  await writeFile(geoip, '');
  const lines = [
    `DataDirectory ${dataDir}`,
    'ControlPort auto',
    `ControlPortWriteToFile ${join(dir, 'control.port')}`,
    `GeoIPFile ${geoip}`,
    `GeoIPv6File ${geoip}`,
    'Log notice stderr',
    // tor exits if this test process dies without stopping it.
    `__OwningControllerProcess ${process.pid}`,
  ];
  if (opts.password !== undefined) {
    const { stdout } = await run(TOR_BIN, ['--quiet', '--hash-password', opts.password]);
    lines.push(`HashedControlPassword ${stdout.trim().split('\n').pop()}`);
  } else {
    lines.push('CookieAuthentication 1');
  }
  let controlSocket: string | undefined;
  if (opts.unixSocket) {
    controlSocket = join(dir, 'control.sock');
    lines.push(`ControlSocket ${controlSocket}`);
  }
  if (opts.mode === 'offline') {
    lines.push('DisableNetwork 1', 'SocksPort 0');
  } else {
    lines.push(
      'TestingTorNetwork 1',
      // The only authority: loopback ports where nothing listens, so every connection is refused at once.
      'DirAuthority fake orport=1 no-v2 v3ident=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 127.0.0.1:2 BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
      'SocksPort auto ExtendedErrors',
      'ClientUseIPv6 0',
    );
  }
  lines.push(...(opts.extra ?? []));
  const torrc = join(dir, 'torrc');
  await writeFile(torrc, `${lines.join('\n')}\n`);
  const proc = spawn(TOR_BIN, ['-f', torrc, '--ignore-missing-torrc'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const control = await readControlPortFile(join(dir, 'control.port'), { timeoutMs: 20_000 });
    return {
      dir,
      dataDir,
      control,
      cookieFile: join(dataDir, 'control_auth_cookie'),
      ...(controlSocket ? { controlSocket } : {}),
      proc,
      exited,
      log: () => log,
      stop,
    };
  } catch (err) {
    await stop();
    throw new Error(`tor did not start: ${(err as Error).message}\n${log}`);
  }
}
