import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { ERROR_CODES } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

describe('docs/cli.md', () => {
  it('lists every error code with the exit code the CLI gives it', () => {
    const rows = new Map<string, number>();
    for (const line of doc.split('\n')) {
      const m = /^\| (\d+) \| (`ERR_[A-Z_]+`(?: \/ `ERR_[A-Z_]+`)*) \|/.exec(line);
      if (!m) continue;
      for (const code of (m[2] as string).match(/ERR_[A-Z_]+/g) ?? []) rows.set(code, Number(m[1]));
    }
    const expected = Object.entries(ERROR_CODES).map(([code, category]) => [code, EXIT_CODES[category]]);
    expect([...rows].sort()).toEqual(expected.sort());
  });
});
