// The TCP_NODELAY preload shim (src/tor/nodelay.ts, native/tor-nodelay.c): built with the real C compiler, a
// real program preloaded with it gets TCP_NODELAY on the sockets it connects and accepts; without a compiler
// the build reports why instead of failing; the environment variable turns it off.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodelayShim, NODELAY_ENV, nodelayDisabledByEnv, nodelayEnv } from '../../src/tor/nodelay.js';
import { findExecutable } from '../../src/tor/torrc.js';

const run = promisify(execFile);
const CHECK_SOURCE = fileURLToPath(new URL('../fixtures/nodelay-check.c', import.meta.url));
const cc = (await findExecutable('cc')) ?? (await findExecutable('gcc'));
const linuxWithCc = process.platform === 'linux' && cc !== undefined;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-nodelay-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tor-nodelay shim', () => {
  it.skipIf(!linuxWithCc)(
    'sets TCP_NODELAY on connected and accepted TCP sockets of a preloaded program',
    async () => {
      const shim = await buildNodelayShim({ cacheDirs: [join(tmp, 'cache')] });
      expect(shim.path).toMatch(/tor-nodelay-[0-9a-f]{16}\.so$/);
      const check = join(tmp, 'check');
      await run(cc as string, ['-o', check, CHECK_SOURCE], { timeout: 60_000 });
      const plain = await run(check, [], { timeout: 10_000, env: { PATH: process.env.PATH } });
      expect(plain.stdout.trim()).toBe('0 0');
      const preloaded = await run(check, [], {
        timeout: 10_000,
        env: { PATH: process.env.PATH, LD_PRELOAD: shim.path as string },
      });
      expect(preloaded.stdout.trim()).toBe('1 1');
      // A second call finds the built file instead of compiling again.
      expect(await buildNodelayShim({ cacheDirs: [join(tmp, 'cache')], cc: null })).toEqual(shim);
    },
  );

  it.skipIf(process.platform !== 'linux')('without a compiler reports why and builds nothing', async () => {
    const shim = await buildNodelayShim({ cacheDirs: [join(tmp, 'empty-cache')], cc: null });
    expect(shim.path).toBeUndefined();
    expect(shim).toMatchObject({ reason: expect.stringMatching(/no C compiler/) });
  });

  it('a failing compiler is a reason, not an error', async () => {
    const shim = await buildNodelayShim({ cacheDirs: [join(tmp, 'bad-cache')], cc: '/bin/false' });
    expect(shim.path).toBeUndefined();
  });

  it(`${NODELAY_ENV}=0 (or off, false, no) turns it off; other values leave it on`, async () => {
    for (const v of ['0', 'off', 'FALSE', ' no '])
      expect(nodelayDisabledByEnv({ [NODELAY_ENV]: v })).toBe(true);
    for (const v of [undefined, '', '1', 'on'])
      expect(nodelayDisabledByEnv({ [NODELAY_ENV]: v })).toBe(false);
    expect(await nodelayEnv(false)).toBe(process.env);
  });
});
