/**
 * Quoting and keyword-argument parsing of the control protocol (control-spec §2.1 "Description format":
 * QuotedString, CString and `Keyword=Value` arguments). Pure functions, no I/O.
 * @module
 */
import { TorControlError } from './errors.js';

const SIMPLE_ESCAPES: Record<string, string> = {
  n: '\n',
  r: '\r',
  t: '\t',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/**
 * Reads a quoted string starting at `text[start] === '"'`. Handles the C escapes tor's `unescape_string`
 * accepts (`\n \r \t \\ \" \'`, octal `\NNN`, hex `\xHH`). Returns the unescaped value and the index just
 * past the closing quote.
 */
export function readQuoted(text: string, start: number): { value: string; end: number } {
  if (text[start] !== '"') throw protocol(`expected '"' at ${start}`, text);
  let out = '';
  let i = start + 1;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') return { value: out, end: i + 1 };
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const n = text[i + 1];
    if (n === undefined) break;
    if (n in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[n];
      i += 2;
    } else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      out += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(text.slice(i + 1)) as RegExpExecArray;
      out += String.fromCharCode(Number.parseInt(m[0], 8) & 0xff);
      i += 1 + m[0].length;
    } else {
      throw protocol(`bad escape "\\${n}"`, text);
    }
  }
  throw protocol('unterminated quoted string', text);
}

/** Quotes a value for a command argument (control-spec §2.1 QuotedString): escapes `\`, `"`, CR, LF, TAB. */
export function quote(value: string): string {
  return `"${value.replace(/[\\"\r\n\t]/g, (c) => (c === '\r' ? '\\r' : c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}

/** One token of a reply line: a bare/quoted word, or `KEY=value` with the value unquoted. */
export type Token = { key: string; value: string } | { word: string };

const KEY_RE = /^([A-Za-z0-9_/.-]+)=/;

/**
 * Splits a reply line into tokens separated by spaces. A token `KEY=...` becomes a keyword argument (the
 * value unquoted when it starts with `"`); anything else is a positional word (quoted words unquoted).
 * `keywordsUpperOnly` keeps base64 words such as `ABCD=` positional unless the key is upper case.
 */
export function tokenize(line: string, keywordsUpperOnly = false): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    if (line[i] === '"') {
      const q = readQuoted(line, i);
      tokens.push({ word: q.value });
      i = q.end;
      continue;
    }
    const m = KEY_RE.exec(line.slice(i));
    const key = m?.[1];
    if (m && key && (!keywordsUpperOnly || /^[A-Z][A-Z0-9_]*$/.test(key))) {
      i += m[0].length;
      if (line[i] === '"') {
        const q = readQuoted(line, i);
        tokens.push({ key, value: q.value });
        i = q.end;
      } else {
        const sp = line.indexOf(' ', i);
        const end = sp === -1 ? line.length : sp;
        tokens.push({ key, value: line.slice(i, end) });
        i = end;
      }
      continue;
    }
    const sp = line.indexOf(' ', i);
    const end = sp === -1 ? line.length : sp;
    tokens.push({ word: line.slice(i, end) });
    i = end;
  }
  return tokens;
}

/** Positional words and keyword arguments of a line, in that split. */
export function splitArgs(
  line: string,
  keywordsUpperOnly = false,
): { words: string[]; kv: Record<string, string> } {
  const words: string[] = [];
  const kv: Record<string, string> = {};
  for (const t of tokenize(line, keywordsUpperOnly)) {
    if ('word' in t) words.push(t.word);
    else kv[t.key] = t.value;
  }
  return { words, kv };
}

function protocol(why: string, raw: string): TorControlError {
  return new TorControlError('ERR_TOR_CONTROL_PROTOCOL', `malformed control reply: ${why}`, {
    details: { raw: raw.length > 300 ? `${raw.slice(0, 300)}…` : raw },
  });
}
