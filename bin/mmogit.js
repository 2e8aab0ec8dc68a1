#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (tsc).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('mmogit: not built yet — run `npm run build` in the mmogit package first\n');
  process.exit(70);
}
await import(entry.href);
