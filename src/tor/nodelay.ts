/**
 * The TCP_NODELAY preload shim for the tors of a private network (`native/tor-nodelay.c`).
 *
 * tor sets no `TCP_NODELAY` on its sockets, so on loopback a small write behind an unacknowledged one waits for
 * the peer's delayed ACK (Nagle, RFC 896, against delayed ACKs, RFC 1122 §4.2.3.2): the private network then
 * sits at ~88 ms per round trip instead of ~1.5 ms (figures: docs/tor.md, "TCP_NODELAY"). The shim wraps
 * `connect`/`accept`/`accept4` and sets the option on every TCP socket; it is built here, from the source in
 * the package, with the system C compiler, into `.cache/tor-nodelay/` (ignored by git), never downloaded.
 *
 * Where it cannot be used (no compiler, the build fails, not Linux, `MMOGIT_TOR_NODELAY=0`), tors start as
 * before: one process warning (code {@link NODELAY_WARNING_CODE}) says why, nothing fails.
 * @module
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from './torrc.js';

/** Set to `0` (or `off`, `false`, `no`) to start every tor without the shim. */
export const NODELAY_ENV = 'MMOGIT_TOR_NODELAY';
/** The `code` of the one process warning when the shim is wanted but cannot be used. */
export const NODELAY_WARNING_CODE = 'MMOGIT_TOR_NODELAY';
/** Bound on one compile (measured: ~0.1 s). */
export const NODELAY_BUILD_TIMEOUT_MS = 60_000;

/** The shim's source: the package root, from `src/tor/` (tsx, vitest) or `dist/src/tor/` (built). */
const SOURCE_CANDIDATES = ['../../native/tor-nodelay.c', '../../../native/tor-nodelay.c'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

/** Whether the shim is in use, and if not, why. */
export type NodelayShim = { path: string } | { path?: undefined; reason: string };

/** Whether `MMOGIT_TOR_NODELAY` turns the shim off. */
export function nodelayDisabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(0|off|false|no)$/i.test((env[NODELAY_ENV] ?? '').trim());
}

async function findSource(): Promise<{ path: string; text: string } | undefined> {
  for (const path of SOURCE_CANDIDATES) {
    try {
      return { path, text: await readFile(path, 'utf8') };
    } catch {}
  }
  return undefined;
}

/** Cache dirs to try: the package's `.cache/` (git-ignored), else the user's cache (a read-only install). */
function cacheDirs(source: string): string[] {
  const root = join(source, '..', '..');
  const user = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return [join(root, '.cache', 'tor-nodelay'), join(user, 'mmogit', 'tor-nodelay')];
}

function compile(cc: string, source: string, out: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      cc,
      ['-shared', '-fPIC', '-O2', '-o', out, source, '-ldl'],
      { signal, timeout: NODELAY_BUILD_TIMEOUT_MS, maxBuffer: 1 << 20 },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`${cc} failed: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
  });
}

/** Where to build and which compiler to use (tests pass their own; `cc: null` means none). */
export interface NodelayBuildOptions {
  cacheDirs?: readonly string[];
  cc?: string | null;
}

/**
 * Finds the shim in a cache dir or builds it there; `{ reason }` when neither works. Never throws.
 * @internal {@link nodelayShim} is the entry point; exported for tests.
 */
export async function buildNodelayShim(options: NodelayBuildOptions = {}): Promise<NodelayShim> {
  if (process.platform !== 'linux') return { reason: `LD_PRELOAD shims are not used on ${process.platform}` };
  const source = await findSource();
  if (!source) return { reason: 'native/tor-nodelay.c is not in this package' };
  const cc =
    options.cc === null
      ? undefined
      : (options.cc ?? (await findExecutable(process.env.CC || 'cc')) ?? (await findExecutable('gcc')));
  const hash = createHash('sha256').update(source.text).update(process.arch).digest('hex').slice(0, 16);
  let lastError = 'no C compiler (cc or gcc) found';
  for (const dir of options.cacheDirs ?? cacheDirs(source.path)) {
    const out = join(dir, `tor-nodelay-${hash}.so`);
    try {
      if ((await stat(out)).isFile()) return { path: out };
    } catch {}
    if (!cc) continue;
    // Built under a unique name and renamed: processes building at once never preload a half-written file.
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await compile(cc, source.path, tmp, AbortSignal.timeout(NODELAY_BUILD_TIMEOUT_MS));
      await rename(tmp, out);
      return { path: out };
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => {});
      lastError = e instanceof Error ? e.message : String(e);
    }
  }
  return { reason: lastError };
}

let built: Promise<NodelayShim> | undefined;
let warned = false;

/**
 * The shim, built on first use and then cached (per process in memory, across processes on disk). Never
 * throws; `{ reason }` when it cannot be used, after one process warning the first time.
 */
export async function nodelayShim(): Promise<NodelayShim> {
  if (nodelayDisabledByEnv()) return { reason: `${NODELAY_ENV}=${process.env[NODELAY_ENV]}` };
  built ??= buildNodelayShim().catch((e: unknown) => ({
    reason: e instanceof Error ? e.message : String(e),
  }));
  const shim = await built;
  if (shim.path === undefined && !warned) {
    warned = true;
    process.emitWarning(
      `tor starts without the TCP_NODELAY shim (${shim.reason}): round trips on the private network may ` +
        'stall at ~88 ms (docs/tor.md, "TCP_NODELAY")',
      { code: NODELAY_WARNING_CODE },
    );
  }
  return shim;
}

/**
 * The environment to start a tor of a private network with: `LD_PRELOAD` gets the shim (in front of any
 * preload already set) unless `enabled` is false or the shim cannot be used.
 */
export async function nodelayEnv(enabled = true): Promise<NodeJS.ProcessEnv> {
  if (!enabled) return process.env;
  const shim = await nodelayShim();
  if (shim.path === undefined) return process.env;
  const preload = process.env.LD_PRELOAD;
  return { ...process.env, LD_PRELOAD: preload ? `${shim.path} ${preload}` : shim.path };
}
