/**
 * Reply framing of the control protocol (control-spec §2.3 "Replies from Tor to the controller"). Pure:
 * {@link ReplyParser} turns text as it arrives, in any chunking, into whole {@link ControlReply} values.
 *
 * A real transcript (tor 0.4.9.11, test/fixtures/tor-control/session-cookie.txt):
 * ```
 * 250-PROTOCOLINFO 1
 * 250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/h1tor/data/control_auth_cookie"
 * 250-VERSION Tor="0.4.9.11"
 * 250 OK
 * 250+config-text=
 * ControlPort auto
 * .
 * 250 OK
 * 552 Unrecognized key "no-such-key"
 * ```
 * @module
 */
import { clip, TorControlError } from './errors.js';

/** One line of a reply: `StatusCode Divider Text`, plus the data block after a `+` line. */
export interface ReplyLine {
  status: number;
  /** `-` mid-reply line, `+` line followed by a data block, ` ` end line (control-spec §2.3). */
  divider: '-' | '+' | ' ';
  text: string;
  /** The data block of a `+` line, dot-unescaped, lines joined with `\n` (no trailing newline). */
  data?: string;
}

/** A whole reply: every line up to and including the end line. */
export interface ControlReply {
  /** Status code of the end line: 2xx success, 4xx/5xx failure, 650 asynchronous event. */
  status: number;
  lines: ReplyLine[];
  /** The reply as tor sent it, lines joined with `\n` (for error details; may hold secrets: never log it). */
  raw: string;
}

/** True for a 2xx reply. */
export function isOk(reply: ControlReply): boolean {
  return reply.status >= 200 && reply.status < 300;
}

const LINE_RE = /^(\d{3})([ +-])(.*)$/s;

/**
 * Longest reply line we hold (characters). tor's own lines are short (a `GETINFO` value on one line is a few
 * KiB at most); a peer that sends a line without end must not make us buffer it for ever.
 */
export const MAX_REPLY_LINE = 1024 * 1024;
/** Largest whole reply (characters, data blocks included): above anything the controller asks for. */
export const MAX_REPLY_SIZE = 16 * 1024 * 1024;

/**
 * Incremental reply parser. `push` any text; it returns the replies completed by it. A line that is not
 * `NNN[ +-]…` throws {@link TorControlError} `ERR_TOR_CONTROL_PROTOCOL` (the stream is then unusable).
 */
export class ReplyParser {
  private partial = '';
  private lines: ReplyLine[] = [];
  private rawLines: string[] = [];
  private data: string[] | undefined;
  private size = 0;

  /** @throws TorControlError `ERR_TOR_CONTROL_PROTOCOL` for a malformed line, a line over
   *  {@link MAX_REPLY_LINE} or a reply over {@link MAX_REPLY_SIZE}; the stream is unusable afterwards. */
  push(text: string): ControlReply[] {
    const out: ControlReply[] = [];
    this.partial += text;
    let nl = this.partial.indexOf('\n');
    while (nl !== -1) {
      let line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const reply = this.line(line);
      if (reply) out.push(reply);
      nl = this.partial.indexOf('\n');
    }
    if (this.partial.length > MAX_REPLY_LINE) {
      const head = this.partial;
      this.partial = '';
      this.reset();
      throw new TorControlError(
        'ERR_TOR_CONTROL_PROTOCOL',
        `control reply line over ${MAX_REPLY_LINE} characters`,
        {
          details: { raw: clip(head) },
        },
      );
    }
    return out;
  }

  /** True when no reply is half-read. */
  get idle(): boolean {
    return this.partial === '' && this.lines.length === 0 && this.data === undefined;
  }

  private line(line: string): ControlReply | undefined {
    if (line.length > MAX_REPLY_LINE) {
      this.reset();
      throw new TorControlError(
        'ERR_TOR_CONTROL_PROTOCOL',
        `control reply line over ${MAX_REPLY_LINE} characters`,
        {
          details: { raw: clip(line) },
        },
      );
    }
    this.size += line.length + 1;
    if (this.size > MAX_REPLY_SIZE) {
      const raw = this.rawLines.slice(0, 8).join('\n');
      this.reset();
      throw new TorControlError(
        'ERR_TOR_CONTROL_PROTOCOL',
        `control reply over ${MAX_REPLY_SIZE} characters`,
        {
          details: { raw: clip(raw) },
        },
      );
    }
    this.rawLines.push(line);
    if (this.data) {
      if (line === '.') {
        const last = this.lines[this.lines.length - 1] as ReplyLine;
        last.data = this.data.join('\n');
        this.data = undefined;
      } else {
        // Data lines starting with "." are dot-stuffed (control-spec §2.3, like SMTP).
        this.data.push(line.startsWith('.') ? line.slice(1) : line);
      }
      return undefined;
    }
    const m = LINE_RE.exec(line);
    if (!m) {
      const raw = this.rawLines.join('\n');
      this.reset();
      throw new TorControlError(
        'ERR_TOR_CONTROL_PROTOCOL',
        `malformed control reply line: ${clip(line, 120)}`,
        {
          details: { raw: clip(raw) },
        },
      );
    }
    const entry: ReplyLine = {
      status: Number(m[1]),
      divider: m[2] as ReplyLine['divider'],
      text: m[3] as string,
    };
    this.lines.push(entry);
    if (entry.divider === '+') {
      this.data = [];
      return undefined;
    }
    if (entry.divider === '-') return undefined;
    const reply: ControlReply = { status: entry.status, lines: this.lines, raw: this.rawLines.join('\n') };
    this.reset();
    return reply;
  }

  private reset(): void {
    this.lines = [];
    this.rawLines = [];
    this.data = undefined;
    this.size = 0;
  }
}

/** Parses a whole transcript (e.g. a fixture) into replies; throws if it ends mid-reply. */
export function parseReplies(transcript: string): ControlReply[] {
  const p = new ReplyParser();
  const out = p.push(transcript.endsWith('\n') ? transcript : `${transcript}\n`);
  if (!p.idle) {
    throw new TorControlError('ERR_TOR_CONTROL_PROTOCOL', 'transcript ends in the middle of a reply', {
      details: { raw: clip(transcript) },
    });
  }
  return out;
}

/**
 * `GETINFO`/`GETCONF`-style `key=value` lines of a 250 reply, with multi-line (`250+key=`) values from
 * their data block. Splits at the first `=` only: values keep any later `=` (base64 padding, nested args).
 */
export function keyValues(reply: ControlReply): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of reply.lines) {
    if (line.divider === ' ' && line.text === 'OK') continue;
    const eq = line.text.indexOf('=');
    if (line.divider === '+') {
      const key = eq === -1 ? line.text : line.text.slice(0, eq);
      out.set(key, line.data ?? '');
    } else if (eq === -1) {
      out.set(line.text, ''); // GETCONF answers a default-valued key as a bare `250 Key`
    } else {
      out.set(line.text.slice(0, eq), line.text.slice(eq + 1));
    }
  }
  return out;
}
