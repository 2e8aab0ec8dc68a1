/**
 * Text from peers and from memory reaches a person's terminal through the CLI's human output. A terminal acts on
 * control characters instead of showing them: `\r` and `ESC[2K` erase what was printed before them (a fake sender
 * column), OSC sequences set the window title or write the clipboard, C1 controls (U+0080–U+009F) are CSI/OSC on
 * terminals that take 8-bit controls, and the Unicode bidi controls (UAX #9 §2: U+202A–U+202E, U+2066–U+2069,
 * U+200E/F, U+061C) reorder a line so it reads differently from its bytes (CVE-2021-42574, "Trojan Source").
 *
 * So every human printer passes such text through {@link terminalSafe}: each character of the general categories
 * Cc (controls), Cf (format), Zl/Zp (line and paragraph separators) and Cs (lone surrogates) is shown as an
 * escape instead — `\n`, `\r`, `\t`, `\xHH` below U+0100, `\u{HHHH}` above. Two format characters are kept:
 * U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER only join or split glyphs (emoji sequences such as
 * 👩‍💻 need the joiner) and cannot move or hide text. `--json` output is never passed through here: it keeps the
 * exact text, and JSON escapes C0 controls itself.
 *
 * @example
 * terminalSafe('ok\r\x1b[2Kfake'); // 'ok\\r\\x1b[2Kfake'
 * terminalSafe('abc\u202Edef');     // 'abc\\u{202e}def'
 */

/** Every character a terminal could act on or reorder by (see the module comment), except ZWNJ/ZWJ. */
const UNSAFE = /(?![\u200C\u200D])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visible(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0) as number;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/** `text` with every control, format and separator character shown as an escape (one line: `\n` too). */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** Like {@link terminalSafe} but keeps `\n` line breaks: for a block of lines the CLI itself put together. */
export function terminalSafeLines(text: string): string {
  return text.split('\n').map(terminalSafe).join('\n');
}
