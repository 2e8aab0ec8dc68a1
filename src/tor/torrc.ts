/**
 * Rendering of torrc files: the agent's own tor (from the top-level `torrc.template`) and the values that go
 * into it. Pure functions apart from {@link loadTorrcTemplate} and {@link findExecutable}.
 * @module
 */
import { access, constants, readFile } from 'node:fs/promises';
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
        out.push(item);
      }
      continue;
    }
    out.push(
      line.replace(PLACEHOLDER, (_m, name: string) => {
        const value = values[name];
        if (value === undefined) throw missing(name);
        if (typeof value !== 'string' && typeof value !== 'number') {
          throw new MmogitError('ERR_INVALID_ARGUMENT', `torrc placeholder {{${name}}} takes one value`, {
            details: { name },
          });
        }
        checkLine(name, String(value));
        return String(value);
      }),
    );
  }
  return out.join('\n');
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
 * The torrc lines that make tor use `bridges` (each a `Bridge` line's value, with or without the leading
 * `Bridge`, e.g. `obfs4 192.0.2.1:443 <FP> cert=… iat-mode=0`). Transports other than plain ORPort bridges
 * need a `ClientTransportPlugin`: `transportBinaries` maps each used transport to its absolute path
 * (see {@link findExecutable}).
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
    const first = line.split(/\s+/)[0] ?? '';
    if (line === '' || line.startsWith('#')) continue;
    // `[transport] IP:ORPort [fingerprint] [k=v …]` (tor(1), Bridge): a first word without ':' is a transport.
    if (!first.includes(':')) {
      if (!/^[a-z][a-z0-9_]*$/i.test(first)) {
        throw new MmogitError('ERR_INVALID_ARGUMENT', `bad bridge line: ${raw}`);
      }
      transports.add(first);
    }
    bridgeLines.push(`Bridge ${line}`);
  }
  if (bridgeLines.length === 0) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'UseBridges needs at least one bridge line');
  }
  for (const t of transports) {
    const bin = transportBinaries[t];
    if (!bin) {
      throw new MmogitError('ERR_TOR_NOT_FOUND', `no binary for pluggable transport ${t}`, {
        details: { transport: t, candidates: PLUGGABLE_TRANSPORTS[t] ?? [] },
      });
    }
    lines.push(`ClientTransportPlugin ${t} exec ${bin}`);
  }
  return [...lines, ...bridgeLines];
}

/** The absolute path of `name` on `PATH` (or `name` itself if it is a path and executable), else undefined. */
export async function findExecutable(
  name: string,
  path = process.env.PATH ?? '',
): Promise<string | undefined> {
  const candidates =
    isAbsolute(name) || name.includes('/') ? [name] : path.split(delimiter).map((d) => join(d, name));
  // Debian keeps tor in /usr/sbin, which is not on every user's PATH.
  if (!name.includes('/')) candidates.push(join('/usr/sbin', name), join('/usr/bin', name));
  for (const c of candidates) {
    if (!c) continue;
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Finds the binaries for the transports named in `bridges` (`{ obfs4: '/usr/bin/obfs4proxy' }`). */
export async function findTransportBinaries(bridges: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const raw of bridges) {
    const first =
      raw
        .trim()
        .replace(/^Bridge\s+/i, '')
        .split(/\s+/)[0] ?? '';
    if (first === '' || first.includes(':') || out[first]) continue;
    for (const bin of PLUGGABLE_TRANSPORTS[first] ?? [first]) {
      const found = await findExecutable(bin);
      if (found) {
        out[first] = found;
        break;
      }
    }
  }
  return out;
}
