/**
 * Exit policy (docs/mesh.md §Exits): by default an exit reaches only mmogit agents, by onion, at the agent port;
 * TCP targets only when listed (`--exit-to HOST:PORT[-PORT]`). Pure parsing and matching; targets are compared
 * as written (no DNS), so a name in the policy matches only that name.
 * @module
 */
import { MmogitError } from '../errors.js';
import { isOnionAddress } from '../identity/onion.js';
import { DEFAULT_ONION_VIRTUAL_PORT } from '../tor/onion-service.js';

/** One allowed TCP range. */
export interface ExitRule {
  host: string;
  from: number;
  to: number;
}

/** A whole policy: onion agents on these ports (default the agent port), plus TCP rules. */
export interface ExitPolicy {
  onionPorts: readonly number[];
  tcp: readonly ExitRule[];
}

/** The default: mmogit agents by onion at {@link DEFAULT_ONION_VIRTUAL_PORT}, no TCP. */
export const DEFAULT_EXIT_POLICY: ExitPolicy = Object.freeze({
  onionPorts: Object.freeze([DEFAULT_ONION_VIRTUAL_PORT]),
  tcp: Object.freeze([]),
});

/** A target as BEGIN names it. */
export interface Target {
  host: string;
  port: number;
  onion: boolean;
}

function port(s: string, what: string): number {
  const n = Number(s);
  if (!/^\d{1,5}$/.test(s) || n < 1 || n > 65535) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', `${what}: "${s}" is not a port (1–65535)`);
  }
  return n;
}

/** Splits `host:port`, `[v6]:port`; hosts are lower-cased. */
export function splitHostPort(input: string, what = 'address'): { host: string; port: string } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(.+)$/.exec(input) ?? /^([^:[\]\s]+):([^:]+)$/.exec(input);
  if (!m) throw new MmogitError('ERR_INVALID_ARGUMENT', `${what}: "${input}" is not HOST:PORT`);
  return { host: (m[1] as string).toLowerCase(), port: m[2] as string };
}

/** Parses one `--exit-to HOST:PORT[-PORT]`. */
export function parseExitRule(input: string): ExitRule {
  const { host, port: ports } = splitHostPort(input, '--exit-to');
  const [a, b] = ports.split('-');
  const from = port(a as string, '--exit-to');
  const to = b === undefined ? from : port(b, '--exit-to');
  if (to < from) throw new MmogitError('ERR_INVALID_ARGUMENT', `--exit-to: range ${ports} is empty`);
  if (isOnionAddress(host)) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      '--exit-to names TCP targets; onion agents are allowed by default',
    );
  }
  return { host, from, to };
}

/** Builds a policy from `--exit-to` values. */
export function exitPolicyFrom(rules: readonly string[] = []): ExitPolicy {
  return { onionPorts: DEFAULT_EXIT_POLICY.onionPorts, tcp: rules.map(parseExitRule) };
}

/** Parses a BEGIN target (`host:port`); a bad one is `protocol`-level garbage and refused as such. */
export function parseTarget(input: string): Target {
  const { host, port: p } = splitHostPort(input, 'target');
  return { host, port: port(p, 'target'), onion: host.endsWith('.onion') };
}

/** Whether the policy lets this exit connect to `target`. */
export function allows(policy: ExitPolicy, target: Target): boolean {
  if (target.onion) return isOnionAddress(target.host) && policy.onionPorts.includes(target.port);
  return policy.tcp.some((r) => r.host === target.host && target.port >= r.from && target.port <= r.to);
}

/** Policy strings for a relay descriptor: `onion:PORT`, `tcp:HOST:PORT[-PORT]`. */
export function describePolicy(policy: ExitPolicy): string[] {
  return [
    ...policy.onionPorts.map((p) => `onion:${p}`),
    ...policy.tcp.map((r) => {
      const host = r.host.includes(':') ? `[${r.host}]` : r.host;
      return `tcp:${host}:${r.from === r.to ? r.from : `${r.from}-${r.to}`}`;
    }),
  ];
}

/** Parses descriptor policy strings back (unknown entries are ignored: a newer relay may list more). */
export function policyFromDescriptor(entries: readonly string[]): ExitPolicy {
  const onionPorts: number[] = [];
  const tcp: ExitRule[] = [];
  for (const e of entries) {
    try {
      if (e.startsWith('onion:')) onionPorts.push(port(e.slice(6), 'exit'));
      else if (e.startsWith('tcp:')) tcp.push(parseExitRule(e.slice(4)));
    } catch {
      // skip what we cannot read
    }
  }
  return { onionPorts, tcp };
}
