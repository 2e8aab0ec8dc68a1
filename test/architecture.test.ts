// The layering rule "no import circles" (docs/architecture.md), checked on the real tree.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles } from './support/import-cycles.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Circles known and owned by work under way; remove an entry when its circle is gone. */
const KNOWN: string[][] = [];

describe('imports', () => {
  it('src/ has no import circles, type-only ones included, beyond the known ones', () => {
    const extra = importCycles(root).filter((c) => !KNOWN.some((k) => k.join() === c.join()));
    expect(extra).toEqual([]);
  });

  it('the checker finds a circle (a two-file one in its own fixture)', () => {
    expect(importCycles(join(root, 'test', 'fixtures', 'import-cycle'), '.')).toEqual([['a.ts', 'b.ts']]);
  });
});
