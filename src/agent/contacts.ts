/**
 * Contacts: local aliases for peers' onions, kept in `<configDir>/contacts.json` (mode 0600). An alias works
 * wherever an onion does (send, connect, sync, share, recall's author); aliases are this agent's own names and
 * never leave the machine (no message or entry carries them).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../_fs.js';
import { MmogitError } from '../errors.js';
import { isOnionAddress, parseOnionAddress } from '../identity/onion.js';
import { configDirMissing, notADirectory } from '../identity/store.js';

/** The contacts file in a config dir. */
export const CONTACTS_FILE = 'contacts.json';
const FORMAT = 'mmogit-contacts';
const VERSION = 1;
/** An alias: 1–64 characters, lower-case letters, digits and `. _ -`, starting with a letter or digit. */
export const ALIAS_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** At most this many contacts (the file is read on every resolution). */
export const MAX_CONTACTS = 10_000;

/** One contact. */
export interface Contact {
  alias: string;
  onion: string;
  /** When it was added or last changed (ISO 8601). */
  addedAt: string;
}

/** True when `s` would be read as an onion address (with or without `.onion`): such a string is no alias. */
function looksLikeOnion(s: string): boolean {
  return isOnionAddress(s) || isOnionAddress(`${s}.onion`) || s.endsWith('.onion');
}

/** Checks an alias: `ERR_CONTACT_CLASH` when it reads as an onion, `ERR_INVALID_ARGUMENT` when malformed. */
export function checkAlias(alias: string): string {
  if (looksLikeOnion(alias.toLowerCase())) {
    throw new MmogitError(
      'ERR_CONTACT_CLASH',
      `"${alias.slice(0, 80)}" reads as an onion address, not an alias`,
      {
        details: { alias: alias.slice(0, 80) },
      },
    );
  }
  if (!ALIAS_RE.test(alias)) {
    throw new MmogitError(
      'ERR_INVALID_ARGUMENT',
      `alias "${alias.slice(0, 80)}" must be 1–64 lower-case letters, digits or . _ - (starting with a letter or digit)`,
      { details: { field: 'alias' } },
    );
  }
  return alias;
}

function isContact(x: unknown): x is Contact {
  if (typeof x !== 'object' || x === null) return false;
  const c: { alias?: unknown; onion?: unknown; addedAt?: unknown } = x;
  return (
    typeof c.alias === 'string' &&
    ALIAS_RE.test(c.alias) &&
    typeof c.onion === 'string' &&
    isOnionAddress(c.onion) &&
    typeof c.addedAt === 'string'
  );
}

/**
 * The contact book of one config dir. Every call reads the file anew, so a daemon sees `mmogit contacts add`
 * at once; writes are durable (temp file, fsync, rename, directory fsync).
 *
 * @example
 * const book = new ContactBook(configDir);
 * await book.add('bob', bobOnion);
 * await book.resolve('bob') // bobOnion
 */
export class ContactBook {
  readonly path: string;

  constructor(readonly configDir: string) {
    this.path = join(configDir, CONTACTS_FILE);
  }

  /** Every contact, sorted by alias. A missing file is an empty book; a malformed one `ERR_NETWORK_CONFIG`. */
  async list(): Promise<Contact[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      // The config dir is a file (or runs through one): that is the config dir's fault, not the contacts file's.
      if (code === 'ENOTDIR') throw notADirectory(this.configDir, 'config dir');
      throw new MmogitError('ERR_NETWORK_CONFIG', `cannot read ${this.path}`, { cause: e });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (cause) {
      throw new MmogitError('ERR_NETWORK_CONFIG', `${this.path} is not valid JSON`, { cause });
    }
    const d: { format?: unknown; v?: unknown; contacts?: unknown } =
      typeof doc === 'object' && doc !== null ? doc : {};
    if (
      d.format !== FORMAT ||
      d.v !== VERSION ||
      !Array.isArray(d.contacts) ||
      !d.contacts.every(isContact)
    ) {
      throw new MmogitError('ERR_NETWORK_CONFIG', `${this.path} is not a version ${VERSION} contacts file`);
    }
    return [...d.contacts].sort((a, b) => (a.alias < b.alias ? -1 : 1));
  }

  private async save(contacts: Contact[]): Promise<void> {
    const body = `${JSON.stringify({ format: FORMAT, v: VERSION, contacts }, null, 2)}\n`;
    await writeFileDurable(this.path, body, { mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
      // The book lives in an agent's config dir and never creates one (`mmogit init` does, mode 0700).
      if (e.code === 'ENOENT') {
        throw configDirMissing(this.configDir);
      }
      if (e.code === 'ENOTDIR') throw notADirectory(this.configDir, 'config dir');
      throw e;
    });
  }

  /**
   * Adds `alias` for `onion`. Re-adding the same pair is a no-op; `replace` lets an alias point elsewhere.
   *
   * @throws `ERR_CONTACT_CLASH` (the alias reads as an onion, or names another onion without `replace`),
   *   `ERR_INVALID_ARGUMENT` (malformed alias), `ERR_INVALID_ONION`.
   */
  async add(alias: string, onion: string, options: { replace?: boolean } = {}): Promise<Contact> {
    checkAlias(alias);
    const hostname = parseOnionAddress(onion).hostname;
    const contacts = await this.list();
    const existing = contacts.find((c) => c.alias === alias);
    if (existing && existing.onion === hostname) return existing;
    if (existing && !options.replace) {
      throw new MmogitError('ERR_CONTACT_CLASH', `alias "${alias}" already names ${existing.onion}`, {
        details: { alias, onion: existing.onion },
      });
    }
    if (!existing && contacts.length >= MAX_CONTACTS) {
      throw new MmogitError('ERR_TOO_LARGE', `the contact book holds at most ${MAX_CONTACTS} contacts`);
    }
    const contact: Contact = { alias, onion: hostname, addedAt: new Date().toISOString() };
    await this.save([...contacts.filter((c) => c.alias !== alias), contact]);
    return contact;
  }

  /** Removes `alias`; `ERR_UNKNOWN_CONTACT` when there is none. */
  async remove(alias: string): Promise<Contact> {
    const contacts = await this.list();
    const existing = contacts.find((c) => c.alias === alias);
    if (!existing) throw unknownContact(alias);
    await this.save(contacts.filter((c) => c.alias !== alias));
    return existing;
  }

  /**
   * The onion `peer` names: an onion address (returned in canonical form) or an alias.
   *
   * @throws `ERR_UNKNOWN_CONTACT` for a name that is neither, `ERR_INVALID_ONION` for a malformed onion.
   */
  async resolve(peer: string): Promise<string> {
    if (looksLikeOnion(peer.toLowerCase())) return parseOnionAddress(peer).hostname;
    const found = (await this.list()).find((c) => c.alias === peer);
    if (!found) throw unknownContact(peer);
    return found.onion;
  }

  /** The aliases of each onion, for display (an onion may have several). */
  async aliases(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const c of await this.list()) out.set(c.onion, [...(out.get(c.onion) ?? []), c.alias]);
    return out;
  }
}

function unknownContact(name: string): MmogitError {
  return new MmogitError(
    'ERR_UNKNOWN_CONTACT',
    `"${name.slice(0, 80)}" is neither an onion address nor a contact (see \`mmogit contacts list\`)`,
    { details: { alias: name.slice(0, 80) } },
  );
}
