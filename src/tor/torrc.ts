/**
 * Rendering of torrc files: the agent's own tor (from the top-level `torrc.template`) and the values that go
 * into it. Pure functions apart from {@link loadTorrcTemplate} and {@link findExecutable}.
 * @module
 */
import { access, constants, readFile, realpath, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MmogitError } from '../errors.js';

/** A value substituted into a template: one value, or whole lines for a line holding only `{{Name}}`. */
export type TorrcValue = string | number | readonly string[];

const PLACEHOLDER = /\{\{([A-Za-z][A-Za-z0-9]*)\}\}/g;
const BLOCK_LINE = /^\s*\{\{([A-Za-z][A-Za-z0-9]*)\}\}\s*$/;

function checkLine(name: string, value: string): void {
  // One torrc option per line (torrc(5)): a newline or NUL in a value would smuggle in another option.
  if (/[\r\n\0]/.test(value)) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `torrc value for ${name} contains a line break or NUL`, {
      details: { name },
    });
  }
}

/**
 * Replaces the `{{Name}}` placeholders of a torrc template. A line holding only a placeholder whose value is
 * an array becomes one line per element (none for an empty array); everywhere else the value must be a
 * single string or number. Comment lines (`#…`) are copied unchanged. Every placeholder must have a value, and no value may contain a line break.
 *
 * @example
 * renderTorrc('SocksPort {{SocksPort}}\n{{Extra}}\n', { SocksPort: 'auto', Extra: ['SafeLogging 1'] });
 * // 'SocksPort auto\nSafeLogging 1\n'
 */
export function renderTorrc(template: string, values: Readonly<Record<string, TorrcValue>>): string {
  const out: string[] = [];
  const lines = template.split('\n');
  for (const line of lines) {
    // Comments are copied as they are (they may mention placeholders).
    if (line.trimStart().startsWith('#')) {
      out.push(line);
      continue;
    }
    const block = BLOCK_LINE.exec(line);
    if (block) {
      const name = block[1]!;
      const value = values[name];
      if (value === undefined) throw missing(name);
      const items = typeof value === 'string' || typeof value === 'number' ? [String(value)] : value;
      for (const item of items) {
        checkLine(name, item);
        out.push(checkRendered(name, item));
      }
      continue;
    }
    let last = '';
    const rendered = line.replace(PLACEHOLDER, (_m, name: string) => {
      const value = values[name];
      if (value === undefined) throw missing(name);
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `torrc placeholder {{${name}}} takes one value`, {
          details: { name },
        });
      }
      checkLine(name, String(value));
      last = name;
      return String(value);
    });
    out.push(last ? checkRendered(last, rendered) : rendered);
  }
  return out.join('\n');
}

/**
 * tor joins a line that ends in a backslash with the next one (tested with tor 0.4.9: `ContactInfo x \` took the
 * following `SocksPort 9999` line as part of its value), so a value ending that way would swallow the option
 * after it.
 */
function checkRendered(name: string, line: string): string {
  if (/\\\s*$/.test(line)) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `torrc value for ${name} ends in a backslash (line continuation)`,
      {
        details: { name },
      },
    );
  }
  return line;
}

function missing(name: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', `torrc placeholder {{${name}}} has no value`, {
    details: { name },
  });
}

/**
 * Quotes a value the way torrc reads quoted strings (a C-like string: `\\`, `\"` escapes), so paths with
 * spaces or `#` (which would start a comment) survive.
 */
export function torrcQuote(value: string): string {
  checkLine('value', value);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Where `torrc.template` is: the package root, from `src/tor/` (tsx, vitest) or `dist/src/tor/` (built). */
const TEMPLATE_CANDIDATES = ['../../torrc.template', '../../../torrc.template'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

/** Reads the package's `torrc.template` (or `path`, if given). */
export async function loadTorrcTemplate(path?: string): Promise<string> {
  const candidates = path ? [path] : TEMPLATE_CANDIDATES;
  for (const candidate of candidates) {
    try {
      return await readFile(candidate, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new MmogitError('ERR_TOR_START_FAILED', 'torrc.template not found', {
    details: { candidates },
  });
}

/** What goes into an agent's torrc (see `torrc.template`). */
export interface AgentTorrcOptions {
  /** Tor's DataDirectory (created with mode 0700 by the daemon). */
  dataDir: string;
  /** File tor writes its control port into (`PORT=127.0.0.1:<port>`). */
  controlPortFile: string;
  /** Process whose death makes tor exit (`__OwningControllerProcess`). */
  ownerPid: number;
  /** `auto` (default) or a fixed port on 127.0.0.1. */
  socksPort?: number | 'auto';
  /** `auto` (default) or a fixed port on 127.0.0.1. */
  controlPort?: number | 'auto';
  /** Lines every client of a private network needs (`TorNetworkInfo.clientTorrc`). */
  networkLines?: readonly string[];
  /** Lines from {@link bridgeTorrcLines}. */
  bridgeLines?: readonly string[];
  /** Further torrc lines. */
  extraLines?: readonly string[];
}

function portValue(port: number | 'auto' | undefined, what: string): string {
  if (port === undefined || port === 'auto') return '127.0.0.1:auto';
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `${what} must be 'auto' or a port in 1..65535`, {
      details: { [what]: port },
    });
  }
  return `127.0.0.1:${port}`;
}

/**
 * Renders the agent torrc from `template` (the content of `torrc.template`).
 *
 * @example
 * const torrc = renderAgentTorrc(await loadTorrcTemplate(), {
 *   dataDir, controlPortFile: `${dataDir}/control-port`, ownerPid: process.pid,
 * });
 */
export function renderAgentTorrc(template: string, o: AgentTorrcOptions): string {
  return renderTorrc(template, {
    DataDirectory: torrcQuote(o.dataDir),
    ControlPort: portValue(o.controlPort, 'controlPort'),
    ControlPortWriteToFile: torrcQuote(o.controlPortFile),
    SocksPort: portValue(o.socksPort, 'socksPort'),
    OwnerPid: o.ownerPid,
    NetworkLines: o.networkLines ?? [],
    BridgeLines: o.bridgeLines ?? [],
    ExtraLines: o.extraLines ?? [],
  });
}

/** Pluggable transports we know how to run, and the Debian binaries that provide them. */
export const PLUGGABLE_TRANSPORTS: Readonly<Record<string, readonly string[]>> = {
  obfs4: ['obfs4proxy', 'lyrebird'],
};

/**
 * One word of a bridge line (tor(1) `Bridge [transport] IP:ORPort [fingerprint] [k=v …]`): printable ASCII
 * without quotes, backslashes (line continuation) or `#` (a comment would cut the line). Covers IPv6 in
 * brackets, base64 `cert=` values and URL-valued arguments.
 */
const BRIDGE_WORD_RE = /^[\x21\x24-\x5b\x5d-\x7e]+$/;
const TRANSPORT_RE = /^[a-z][a-z0-9_]*$/i;
/** What tor splits a `ClientTransportPlugin … exec` path at, or reads as a quote or comment, is refused. */
const SAFE_PATH_RE = /^\/[A-Za-z0-9._+/-]+$/;

/**
 * The torrc lines that make tor use `bridges` (each a `Bridge` line's value, with or without the leading
 * `Bridge`, e.g. `obfs4 192.0.2.1:443 <FP> cert=… iat-mode=0`). Transports other than plain ORPort bridges
 * need a `ClientTransportPlugin`: `transportBinaries` maps each used transport to the absolute path of its
 * binary (see {@link findTransportBinaries}). tor splits the `exec` argument at spaces and has no quoting
 * for it, so the path must be plain (letters, digits, `._+-/`).
 *
 * @throws MmogitError `ERR_INVALID_ARGUMENT` for a bridge line that is not one line of plain words or a bad
 *   binary path; `ERR_TOR_NOT_FOUND` when a transport has no binary.
 */
export function bridgeTorrcLines(
  bridges: readonly string[],
  transportBinaries: Readonly<Record<string, string>> = {},
): string[] {
  if (bridges.length === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'UseBridges needs at least one bridge line');
  }
  const lines = ['UseBridges 1'];
  const transports = new Set<string>();
  const bridgeLines: string[] = [];
  for (const raw of bridges) {
    checkLine('bridge', raw);
    const line = raw.trim().replace(/^Bridge\s+/i, '');
    if (line === '' || line.startsWith('#')) continue;
    const words = line.split(/[ \t]+/);
    const bad = words.find((w) => !BRIDGE_WORD_RE.test(w));
    if (bad !== undefined) {
      throw new MmogitError(
        'ERR_INVALID_ARGUMENT',
        `bad bridge line (quote, backslash, # or control character): ${raw.slice(0, 200)}`,
        {
          details: { word: bad.slice(0, 64) },
        },
      );
    }
    const first = words[0] as string;
    // A first word without ':' is a transport name.
    if (!first.includes(':')) {
      if (!TRANSPORT_RE.test(first) || words.length < 2) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `bad bridge line: ${raw.slice(0, 200)}`);
      }
      transports.add(first);
    }
    bridgeLines.push(`Bridge ${words.join(' ')}`);
  }
  if (bridgeLines.length === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'UseBridges needs at least one bridge line');
  }
  for (const t of transports) {
    const bin = Object.hasOwn(transportBinaries, t) ? transportBinaries[t] : undefined;
    if (!bin) {
      throw new MmogitError('ERR_TOR_NOT_FOUND', `no binary for pluggable transport ${t}`, {
        details: { transport: t, candidates: PLUGGABLE_TRANSPORTS[t] ?? [] },
      });
    }
    if (!SAFE_PATH_RE.test(bin) || bin.split('/').includes('..')) {
      throw new MmogitError(
        'ERR_INVALID_ARGUMENT',
        `transport binary must be a plain absolute path: ${bin.slice(0, 200)}`,
        {
          details: { transport: t },
        },
      );
    }
    lines.push(`ClientTransportPlugin ${t} exec ${bin}`);
  }
  return [...lines, ...bridgeLines];
}

/**
 * The real, absolute path of the executable `name`: looked up in the absolute directories of `PATH` (relative
 * entries such as `.` or an empty one, i.e. the current directory, are skipped), then `/usr/sbin` and
 * `/usr/bin`; a `name` with a `/` must itself be absolute. Only a regular file we may execute counts.
 * Undefined when there is none.
 */
export async function findExecutable(
  name: string,
  path = process.env.PATH ?? '',
): Promise<string | undefined> {
  let candidates: string[];
  if (name.includes('/')) {
    candidates = isAbsolute(name) ? [name] : [];
  } else {
    candidates = path
      .split(delimiter)
      .filter((d) => isAbsolute(d))
      .map((d) => join(d, name));
    // Debian keeps tor in /usr/sbin, which is not on every user's PATH.
    candidates.push(join('/usr/sbin', name), join('/usr/bin', name));
  }
  for (const c of candidates) {
    try {
      const real = await realpath(c);
      if (!(await stat(real)).isFile()) continue;
      await access(real, constants.X_OK);
      return real;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Finds the binaries of the known transports ({@link PLUGGABLE_TRANSPORTS}) named in `bridges`
 * (`{ obfs4: '/usr/bin/obfs4proxy' }`). A transport we do not know is never looked up: its name comes from a
 * bridge line (config, a network file), and searching `PATH` for it would run whatever program it names.
 */
export async function findTransportBinaries(bridges: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const raw of bridges) {
    const first =
      raw
        .trim()
        .replace(/^Bridge\s+/i, '')
        .split(/\s+/)[0] ?? '';
    if (first === '' || first.includes(':') || out[first] || !Object.hasOwn(PLUGGABLE_TRANSPORTS, first))
      continue;
    for (const bin of PLUGGABLE_TRANSPORTS[first] ?? []) {
      const found = await findExecutable(bin);
      if (found) {
        out[first] = found;
        break;
      }
    }
  }
  return out;
}
