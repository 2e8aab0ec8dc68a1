import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { terminalSafe, terminalSafeLines } from '../../cli/_terminal-safe.js';
import { Agent } from '../../src/agent/agent.js';
import { runCli } from '../helpers/cli.js';

/**
 * What a terminal may act on, written out independently of the module's regex: C0, DEL and C1 controls, the
 * bidi embeddings/overrides/isolates and marks (UAX #9), line/paragraph separators, lone surrogates, and every
 * other format character but ZWNJ/ZWJ.
 */
function dangerous(cp: number): boolean {
  if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) return true;
  if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return true;
  if (cp === 0x200e || cp === 0x200f || cp === 0x061c || cp === 0x2028 || cp === 0x2029) return true;
  if (cp >= 0xd800 && cp <= 0xdfff) return true;
  if (cp === 0x200c || cp === 0x200d) return false;
  return /\p{Cf}/u.test(String.fromCodePoint(cp));
}
const codePoints = (s: string): number[] => {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i) as number;
    out.push(cp);
    if (cp > 0xffff) i++;
  }
  return out;
};

// Attack strings seen in the wild: erase line + fake column, carriage return over the sender, window title
// (OSC 0), clipboard write (OSC 52), 8-bit CSI, Trojan Source bidi override, hidden text after a line separator.
const HOSTILE = [
  'hi\x1b[2K\r2026-01-01T00:00:00.000Z  aaaaaaaaaaaaaaaa…  ✓  fake',
  'text\rFAKE',
  '\x1b]0;pwned\x07title',
  '\x1b]52;c;ZWNobyBwd25lZA==\x07',
  '\x9b2Kc1-csi',
  'admin\u202Enigol\u202C',
  'visible\u2028hidden',
  'a\u2066b\u2069c\u200Fd\uFEFFe',
];

describe('terminalSafe', () => {
  it('never returns a control, format, separator or lone surrogate character (property, any string)', () => {
    // fast-check prints the seed and the shrunk counterexample when this fails.
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), (s) => {
        expect(codePoints(terminalSafe(s)).filter(dangerous)).toEqual([]);
        expect(codePoints(terminalSafeLines(s)).filter((cp) => cp !== 0x0a && dangerous(cp))).toEqual([]);
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps printable text as it is, and each escape names the character it replaced', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const printable = codePoints(s).every((cp) => !dangerous(cp));
        if (printable) expect(terminalSafe(s)).toBe(s);
      }),
    );
    expect(terminalSafe('ok\r\x1b[2Kfake\n\t')).toBe('ok\\r\\x1b[2Kfake\\n\\t');
    expect(terminalSafe('\x9b\x00\x7f')).toBe('\\x9b\\x00\\x7f');
    expect(terminalSafe('abc\u202Edef\u2066')).toBe('abc\\u{202e}def\\u{2066}');
    expect(terminalSafe('\uD800x')).toBe('\\u{d800}x');
    expect(terminalSafe('👩‍💻 ünïcode')).toBe('👩‍💻 ünïcode'); // ZWJ sequence kept
    expect(terminalSafeLines('one\ntwo\r')).toBe('one\ntwo\\r');
  });
});

describe('human output of stored text (real store, real CLI)', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'mmogit-tty-'));
    // The hostile text is stored as an agent (or a synced peer) would have stored it: through the SDK.
    const { agent } = await Agent.init({ configDir: home });
    const store = await agent.memory();
    for (const [i, text] of HOSTILE.entries()) {
      await store.remember({ type: 'observation', content: text, tags: [`t${i}\x1b[31m`] });
      await store.post(text);
    }
    await agent.close();
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it.each([['recall'], ['show']])('`%s` prints every hostile entry escaped, one line each', async (cmd) => {
    const r = await runCli([cmd, '--config-dir', home]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(codePoints(r.stdout).filter((cp) => cp !== 0x0a && dangerous(cp))).toEqual([]);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(cmd === 'recall' ? HOSTILE.length : 2 * HOSTILE.length);
    expect(r.stdout).toContain('hi\\x1b[2K\\r2026-01-01');
    expect(r.stdout).toContain('\\x1b]0;pwned\\x07title');
    expect(r.stdout).toContain('admin\\u{202e}nigol\\u{202c}');
    if (cmd === 'recall') expect(r.stdout).toContain('#t0\\x1b[31m');
  });

  it('`--json` keeps the exact text', async () => {
    const r = await runCli(['recall', '--json', '--config-dir', home]);
    const contents = r.json<{ content: string }[]>().map((e) => e.content);
    expect(contents.sort()).toEqual([...HOSTILE].sort());
  });
});
