/**
 * The `ADD_ONION` command (control-spec §3.27): its request and result types, the checked command line, and
 * the reply parser. Pure.
 * @module
 */
import { MmogitError } from '../../errors.js';
import { clip, TorControlError } from './errors.js';
import { type ControlReply, keyValues } from './reply.js';

/** One `Port=` of ADD_ONION: `virtualPort` on the onion forwards to `target` (`host:port` or `unix:/path`). */
export interface OnionPort {
  virtualPort: number;
  target: string;
}

export interface AddOnionRequest {
  /** `ED25519-V3:<base64 of the 64-byte expanded secret>` or `NEW:ED25519-V3`. Secret: never logged. */
  key: string;
  ports: OnionPort[];
  /** e.g. `Detach`, `DiscardPK`, `NonAnonymous`, `MaxStreamsCloseCircuit` (control-spec §3.27). */
  flags?: string[];
  /** `MaxStreams=` (0 = unlimited). */
  maxStreams?: number;
}

export interface AddOnionResult {
  /** 56-character ServiceID (the onion address without `.onion`). */
  serviceId: string;
  /** Only for `NEW:` keys without `DiscardPK`: `ED25519-V3:<base64>`. Secret. */
  privateKey?: string;
}

const KEY_BLOB_RE = /^(NEW:(BEST|ED25519-V3)|ED25519-V3:[A-Za-z0-9+/]+={0,2})$/;

function invalid(message: string): MmogitError {
  return new MmogitError('ERR_INVALID_ARGUMENT', message);
}

/** The `ADD_ONION` command line for `req`, every part checked (`ERR_INVALID_ARGUMENT`). Holds the key: never log it. */
export function addOnionCommand(req: AddOnionRequest): string {
  if (!KEY_BLOB_RE.test(req.key))
    throw invalid('ADD_ONION key must be NEW:ED25519-V3 or ED25519-V3:<base64>');
  if (req.ports.length === 0) throw invalid('ADD_ONION needs at least one port');
  const parts = ['ADD_ONION', req.key];
  const flags = req.flags ?? [];
  for (const f of flags) if (!/^[A-Za-z]+$/.test(f)) throw invalid(`invalid ADD_ONION flag "${f}"`);
  if (flags.length) parts.push(`Flags=${flags.join(',')}`);
  if (req.maxStreams !== undefined) {
    if (!Number.isInteger(req.maxStreams) || req.maxStreams < 0 || req.maxStreams > 65535) {
      throw invalid('maxStreams must be an integer in 0..65535');
    }
    parts.push(`MaxStreams=${req.maxStreams}`);
  }
  for (const p of req.ports) {
    if (!Number.isInteger(p.virtualPort) || p.virtualPort < 1 || p.virtualPort > 65535) {
      throw invalid(`invalid onion virtual port ${p.virtualPort}`);
    }
    if (!/^[^\s,"]+$/.test(p.target)) throw invalid(`invalid onion port target "${p.target}"`);
    parts.push(`Port=${p.virtualPort},${p.target}`);
  }
  return parts.join(' ');
}

/** Parses a successful `ADD_ONION` reply; a reply without a v3 ServiceID is a protocol error (key redacted). */
export function parseAddOnionReply(reply: ControlReply): AddOnionResult {
  const kv = keyValues(reply);
  const serviceId = kv.get('ServiceID');
  if (!serviceId || !/^[a-z2-7]{56}$/.test(serviceId)) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'ADD_ONION reply lacks a v3 ServiceID', {
      details: { raw: clip(reply.raw.replace(/PrivateKey=\S+/g, 'PrivateKey=<redacted>')) },
    });
  }
  const privateKey = kv.get('PrivateKey');
  return { serviceId, ...(privateKey ? { privateKey } : {}) };
}
