/**
 * Authenticating a control connection (control-spec §3.5): reading `PROTOCOLINFO`, choosing a method, reading
 * tor's auth cookie with care, and the SAFECOOKIE exchange (§3.24) that checks tor's proof before sending ours.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import type { AbortOptions } from '../../_async.js';
import { quote, splitArgs } from './_strings.js';
import { clip, TorAuthError, TorControlError } from './errors.js';
import { type ControlReply, isOk } from './reply.js';
import type { ControlSocket } from './socket.js';

/** The answer to `PROTOCOLINFO 1` (control-spec §3.21). */
export interface ProtocolInfo {
  /** e.g. `['COOKIE', 'SAFECOOKIE']`, `['HASHEDPASSWORD']`, `['NULL']` */
  authMethods: string[];
  cookieFile?: string;
  torVersion: string;
}

/**
 * Authentication methods we use (control-spec §3.5, §3.24). Plain `COOKIE` is not one of them: it sends the
 * cookie itself, so whatever answers on the port (a fake control port) would collect it; every tor that offers
 * COOKIE offers SAFECOOKIE too (since 0.2.3.13), which proves the port knows the cookie before we answer.
 */
export type AuthMethod = 'SAFECOOKIE' | 'HASHEDPASSWORD' | 'NULL';

export interface AuthenticateOptions extends AbortOptions {
  /** Password for `HashedControlPassword`; when given, password auth is used. */
  password?: string;
  /**
   * Cookie file to read instead of the one PROTOCOLINFO names. The path PROTOCOLINFO names comes from whoever
   * answers the port, so it is only read when absolute and named like a cookie (`…cookie`); either way the
   * file must be a regular file of exactly 32 bytes.
   */
  cookieFile?: string;
  /** Allow no authentication when tor offers only NULL. Off by default: such a tor trusts any local process. */
  allowNull?: boolean;
  /** Force a method (tests, odd setups); by default password if given, else SAFECOOKIE. */
  method?: AuthMethod;
}

const SAFECOOKIE_SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const SAFECOOKIE_CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';
const COOKIE_LENGTH = 32;

/** Parses a `PROTOCOLINFO 1` reply (control-spec §3.21); a reply lacking AUTH or VERSION is a protocol error. */
export function parseProtocolInfo(reply: ControlReply): ProtocolInfo {
  let authMethods: string[] | undefined;
  let cookieFile: string | undefined;
  let torVersion: string | undefined;
  for (const line of reply.lines) {
    const sp = line.text.indexOf(' ');
    const head = sp === -1 ? line.text : line.text.slice(0, sp);
    const { kv } = splitArgs(sp === -1 ? '' : line.text.slice(sp + 1));
    if (head === 'AUTH') {
      authMethods = (kv.METHODS ?? '').split(',').filter(Boolean);
      cookieFile = kv.COOKIEFILE;
    } else if (head === 'VERSION') {
      torVersion = kv.Tor;
    }
  }
  if (!authMethods || torVersion === undefined) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'PROTOCOLINFO reply lacks AUTH or VERSION', {
      details: { raw: clip(reply.raw) },
    });
  }
  return { authMethods, torVersion, ...(cookieFile !== undefined ? { cookieFile } : {}) };
}

/** Longest cookie path we read (PATH_MAX on Linux). */
const MAX_COOKIE_PATH = 4096;

/**
 * Reads tor's 32-byte auth cookie (control-spec §3.24 `COOKIEFILE`). A path that came from the control port
 * (`trusted` false) must be absolute and end in `cookie` (tor's `control_auth_cookie`, Debian's
 * `control.authcookie`): a fake port must not make us open arbitrary files. Every path must be a regular
 * file of exactly 32 bytes, opened non-blocking, so a FIFO, a device such as /dev/zero or a huge file is
 * refused before any read. The bytes only ever feed the SAFECOOKIE HMACs; they are never sent.
 */
export async function readCookie(path: string | undefined, trusted: boolean): Promise<Buffer> {
  if (!path) throw new TorAuthError('ERR_TOR_AUTH_FAILED', 'tor named no cookie file and none was given');
  const refuse = (why: string, cause?: unknown) =>
    new TorAuthError('ERR_TOR_AUTH_FAILED', `auth cookie ${clip(path, 200)}: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
      details: { cookieFile: clip(path, 200), reason: 'cookie-file' },
    });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (path.length > MAX_COOKIE_PATH || /[\u0000-\u001f\u007f]/.test(path)) throw refuse('not a usable path');
  if (!trusted && !(isAbsolute(path) && /cookie$/i.test(basename(path)))) {
    throw refuse('the control port named a file that is not an auth cookie (pass the cookie file to use it)');
  }
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (err) {
    throw refuse('cannot open it', err);
  }
  try {
    const st = await file.stat();
    if (!st.isFile()) throw refuse('not a regular file');
    if (st.size !== COOKIE_LENGTH) throw refuse(`${st.size} bytes, expected ${COOKIE_LENGTH}`);
    const cookie = Buffer.alloc(COOKIE_LENGTH);
    const { bytesRead } = await file.read(cookie, 0, COOKIE_LENGTH, 0);
    if (bytesRead !== COOKIE_LENGTH) {
      cookie.fill(0);
      throw refuse(`read ${bytesRead} bytes, expected ${COOKIE_LENGTH}`);
    }
    return cookie;
  } finally {
    await file.close().catch(() => {});
  }
}

/**
 * Authenticates `socket` with the method `options` ask for, or the one {@link pickAuthMethod} picks among
 * those `info` offers (see {@link TorController.authenticate}).
 */
export async function authenticateSocket(
  socket: ControlSocket,
  info: ProtocolInfo,
  options: AuthenticateOptions,
  io: AbortOptions,
): Promise<void> {
  const offered = info.authMethods;
  const method = options.method ?? pickAuthMethod(offered, options);
  if (!offered.includes(method)) {
    throw new TorAuthError('ERR_TOR_AUTH_UNSUPPORTED', `tor does not offer ${method} authentication`, {
      details: { offered },
    });
  }
  if (method === 'HASHEDPASSWORD') {
    if (options.password === undefined) {
      throw new TorAuthError(
        'ERR_TOR_AUTH_UNSUPPORTED',
        'tor requires a control password and none was given',
        {
          details: { offered },
        },
      );
    }
    await sendAuth(socket, `AUTHENTICATE ${quote(options.password)}`, io);
    return;
  }
  if (method === 'NULL') {
    await sendAuth(socket, 'AUTHENTICATE', io);
    return;
  }
  const cookie = await readCookie(options.cookieFile ?? info.cookieFile, options.cookieFile !== undefined);
  try {
    await safeCookie(socket, cookie, io);
  } finally {
    cookie.fill(0);
  }
}

/** Password if given, else SAFECOOKIE; never plain COOKIE; NULL only alone and with `allowNull`. */
export function pickAuthMethod(offered: string[], options: AuthenticateOptions): AuthMethod {
  if (options.password !== undefined) return 'HASHEDPASSWORD';
  if (offered.includes('SAFECOOKIE')) return 'SAFECOOKIE';
  if (offered.includes('COOKIE')) {
    throw new TorAuthError(
      'ERR_TOR_AUTH_UNSUPPORTED',
      'the control port offers COOKIE but not SAFECOOKIE: refusing to send the cookie itself (every real tor offers both)',
      { details: { offered } },
    );
  }
  if (offered.includes('HASHEDPASSWORD')) return 'HASHEDPASSWORD'; // fails below: no password given
  if (offered.length === 1 && offered[0] === 'NULL' && options.allowNull) return 'NULL';
  throw new TorAuthError(
    'ERR_TOR_AUTH_UNSUPPORTED',
    offered.includes('NULL')
      ? 'tor asks for no authentication; pass allowNull to accept an unauthenticated control port'
      : `no supported authentication method among ${offered.join(',') || '(none)'}`,
    { details: { offered } },
  );
}

async function safeCookie(socket: ControlSocket, cookie: Buffer, io: AbortOptions): Promise<void> {
  const clientNonce = randomBytes(32);
  const reply = await socket.send(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`, {
    ...io,
    what: 'AUTHCHALLENGE',
  });
  if (!isOk(reply)) throw authFailed(reply);
  const { words, kv } = splitArgs(reply.lines[0]?.text ?? '');
  const serverHash = Buffer.from(kv.SERVERHASH ?? '', 'hex');
  const serverNonce = Buffer.from(kv.SERVERNONCE ?? '', 'hex');
  if (words[0] !== 'AUTHCHALLENGE' || serverHash.length !== 32 || serverNonce.length !== 32) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'malformed AUTHCHALLENGE reply', {
      details: { raw: clip(reply.raw) },
    });
  }
  const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
  const expected = createHmac('sha256', SAFECOOKIE_SERVER_KEY).update(msg).digest();
  if (!timingSafeEqual(expected, serverHash)) {
    // Whoever answered does not know the cookie: do not send our proof; drop the connection.
    socket.destroy();
    throw new TorAuthError('ERR_TOR_AUTH_FAILED', 'SAFECOOKIE: server hash does not match the cookie', {
      details: { reason: 'server-hash-mismatch' },
    });
  }
  const clientHash = createHmac('sha256', SAFECOOKIE_CLIENT_KEY).update(msg).digest('hex');
  msg.fill(0);
  await sendAuth(socket, `AUTHENTICATE ${clientHash}`, io);
}

async function sendAuth(socket: ControlSocket, command: string, io: AbortOptions): Promise<void> {
  const reply = await socket.send(command, { ...io, what: 'AUTHENTICATE' });
  if (!isOk(reply)) throw authFailed(reply);
}

function authFailed(reply: ControlReply): TorAuthError {
  const text = reply.lines[reply.lines.length - 1]?.text ?? '';
  return new TorAuthError(
    'ERR_TOR_AUTH_FAILED',
    `tor refused authentication: ${reply.status} ${clip(text, 200)}`,
    {
      details: { statusCode: reply.status, raw: clip(reply.raw) },
    },
  );
}
