import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BOUNDS,
  glueNegativeValues,
  parseCount,
  parseDecimal,
  parseDuration,
  parseTimeoutMs,
} from '../../cli/_numbers.js';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { hasCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return hasCode(e, 'ERR_INVALID_ARGUMENT') ? 'ERR_INVALID_ARGUMENT' : String((e as Error).message);
  }
};

describe('the numeric flag parser', () => {
  it.each([
    '-1',
    'NaN',
    '0',
    '0x1',
    '1e3',
    '2.5',
    'Infinity',
    ' ',
    '',
    '+3',
    '1_000',
    '10000000000000000000',
  ])('parseCount refuses %j', (v) => {
    expect(code(() => parseCount(v, 'limit', BOUNDS.limit))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('parseCount takes whole numbers in bounds, and only those (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.double().map(String)), (v) => {
        let n: number | undefined;
        try {
          n = parseCount(v, 'limit', BOUNDS.limit);
        } catch (e) {
          expect(hasCode(e, 'ERR_INVALID_ARGUMENT')).toBe(true);
          return;
        }
        expect(Number.isSafeInteger(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(BOUNDS.limit.max);
        expect(String(n)).toBe(v.trim().replace(/^0+(?=\d)/, ''));
      }),
    );
    expect(parseCount('20', 'limit', BOUNDS.limit)).toBe(20);
    expect(parseCount('0', 'relays', BOUNDS.relays)).toBe(0);
    expect(code(() => parseCount(['1', '2'], 'limit', BOUNDS.limit))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('parseDecimal, parseTimeoutMs and parseDuration refuse signs, NaN, hex, exponents and absurd sizes', () => {
    expect(parseDecimal('0.9', 'confidence', BOUNDS.confidence)).toBe(0.9);
    expect(parseDecimal('0', 'confidence', BOUNDS.confidence)).toBe(0);
    for (const v of ['0x1', '1.5', '-0.1', 'NaN', '.5', '1e-1']) {
      expect(code(() => parseDecimal(v, 'confidence', BOUNDS.confidence))).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(code(() => parseDecimal('0', 'hours', BOUNDS.hours))).toBe('ERR_INVALID_ARGUMENT');
    expect(parseTimeoutMs(undefined, 180)).toBe(180_000);
    expect(parseTimeoutMs('2.5', 180)).toBe(2_500);
    for (const v of ['-1', '0', '0.001', '3601', 'Infinity']) {
      expect(code(() => parseTimeoutMs(v, 180))).toBe('ERR_INVALID_ARGUMENT');
    }
    const day = { min: 1_000, max: 86_400_000 };
    expect(parseDuration('6h', 'ttl', day)).toBe(21_600_000);
    expect(parseDuration('1.5m', 'ttl', day)).toBe(90_000);
    for (const v of ['-5h', '25h', '0s', '99999999999d', '5', 'h', '5w', '1e3s']) {
      expect(code(() => parseDuration(v, 'ttl', day))).toBe('ERR_INVALID_ARGUMENT');
    }
  });

  it('glues a negative value to its numeric flag, and nothing else', () => {
    expect(glueNegativeValues(['tor', 'advertise', '--ttl', '-5h'])).toEqual([
      'tor',
      'advertise',
      '--ttl=-5h',
    ]);
    expect(glueNegativeValues(['recall', '--limit', '-1', '--json'])).toEqual([
      'recall',
      '--limit=-1',
      '--json',
    ]);
    expect(glueNegativeValues(['post', '--json', '-5'])).toEqual(['post', '--json', '-5']);
    expect(glueNegativeValues(['recall', '--limit', '-v'])).toEqual(['recall', '--limit', '-v']);
    expect(glueNegativeValues(['post', '--', '--limit', '-1'])).toEqual(['post', '--', '--limit', '-1']);
  });
});

describe('every numeric flag of the CLI refuses bad values with exit 2, before doing anything', () => {
  let root: string;
  let home: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mmogit-flags-'));
    home = join(root, 'agent');
    expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const cases: string[][] = [
    ['recall', '--limit', '-1'],
    ['recall', '--limit', 'NaN'],
    ['recall', '--limit', '0'],
    ['recall', '--hours', '-2'],
    ['recall', '--hours', 'NaN'],
    ['show', '--limit', '1e9'],
    ['inbox', '--limit', '-3'],
    ['remember', '-t', 'task', 'x', '--expires', '99999999999d'],
    ['remember', '-t', 'task', 'x', '--expires', '-1d'],
    ['remember', '-t', 'task', 'x', '--expires', '2001-01-01'],
    ['remember', '-t', 'task', 'x', '--expires', '+275760-09-13'],
    ['remember', '-t', 'task', 'x', '--confidence', '0x1'],
    ['remember', '-t', 'task', 'x', '--confidence', 'Infinity'],
    ['tor', 'advertise', '--services', 'memory_sync', '--ttl', '-5h'],
    ['tor', 'advertise', '--services', 'memory_sync', '--ttl', '48h'],
    ['tor', 'discover', 'memory_sync', '--limit', '-1'],
    ['tor', 'discover', 'memory_sync', '--timeout', '0'],
    ['sync', '--timeout', 'NaN'],
    ['tor', 'start', '--timeout', '-1'],
    ['tor', 'start', '--timeout', '0.001'],
    ['tor', 'start', '--timeout', '1e9'],
    ['a2a', 'card', 'x.onion', '--timeout', '-1'],
    ['a2a', 'send', 'x.onion', 'hi', '--timeout', '0'],
    ['a2a', 'inbox', '--limit', 'NaN'],
    ['testnet', 'up', '--authorities', '0'],
    ['testnet', 'up', '--relays', '-1'],
  ];
  it.each(cases.map((c) => [c.join(' '), c] as const))('%s', async (_name, args) => {
    const before = await readdir(home);
    const r = await runCli([...args, '--json', '--config-dir', home]);
    expect(r.exitCode, r.stderr).toBe(EXIT_CODES.usage);
    expect(r.json<{ error: { code: string } }>().error.code).toMatch(/^ERR_INVALID_(ARGUMENT|MEMORY)$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Nothing was started or written: no daemon socket, log, testnet dir or memory commit.
    expect(await readdir(home)).toEqual(before);
  });

  it('an invalid onion is ERR_INVALID_ONION (a name that is no onion ERR_UNKNOWN_CONTACT) wherever a command takes one', async () => {
    for (const [args, expected] of [
      [['recall', '--author', 'bad'], 'ERR_UNKNOWN_CONTACT'],
      [['recall', '--author', `${'a'.repeat(56)}.onion`], 'ERR_INVALID_ONION'],
      [['recall', '--author', 'bad.onion'], 'ERR_INVALID_ONION'],
      [['remember', '-t', 'task', 'x', '--share', 'bad.onion'], 'ERR_INVALID_ONION'],
      [['sync', 'nope.onion'], 'ERR_INVALID_ONION'],
      [['sync', 'nope'], 'ERR_UNKNOWN_CONTACT'],
    ] as const) {
      const r = await runCli([...args, '--json', '--config-dir', home]);
      expect(r.exitCode, args.join(' ')).toBe(EXIT_CODES.usage);
      expect(r.json<{ error: { code: string } }>().error.code, args.join(' ')).toBe(expected);
    }
  });
});

describe('a broken config dir is a config error (exit 3) with a true message', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mmogit-config-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a config dir that is a file', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    for (const args of [['tor', 'address'], ['recall'], ['init'], ['tor', 'status']]) {
      const r = await runCli([...args, '--json', '--config-dir', file]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(EXIT_CODES.config);
      expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: `config dir ${file} is not a directory`,
      });
    }
    const below = await runCli(['init', '--json', '--config-dir', join(file, 'sub')]);
    expect(below.exitCode).toBe(EXIT_CODES.config);
    expect(below.json<{ error: { code: string } }>().error.code).toBe('ERR_CONFIG_INVALID');
  });

  it('a memory repository that is a file', async () => {
    const home = join(root, 'memory-file');
    expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
    await rm(join(home, 'memory'), { recursive: true });
    await writeFile(join(home, 'memory'), 'not a repository');
    for (const args of [['recall'], ['show'], ['post', 'hi'], ['remember', '-t', 'task', 'x']]) {
      const r = await runCli([...args, '--json', '--config-dir', home]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(EXIT_CODES.config);
      expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: `memory repository ${join(home, 'memory')} is not a directory`,
      });
    }
  });

  it.each([
    ['null', 'does not hold an identity object'],
    ['[]', 'does not hold an identity object'],
    ['"seed"', 'does not hold an identity object'],
    ['{"format":', 'is not valid JSON'],
    ['{}', 'unknown format or version'],
  ])('an identity.key holding %s', async (content, message) => {
    const home = join(root, `key-${Buffer.from(content).toString('hex')}`);
    expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
    await writeFile(join(home, 'identity.key'), content, { mode: 0o600 });
    for (const args of [['tor', 'address'], ['recall'], ['tor', 'status']]) {
      const r = await runCli([...args, '--json', '--config-dir', home]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(EXIT_CODES.config);
      const error = r.json<{ error: { code: string; message: string } }>().error;
      expect(error.code).toBe('ERR_IDENTITY_CORRUPT');
      expect(error.message).toContain(message);
    }
  });

  it('an identity.key that is a directory', async () => {
    const home = join(root, 'key-dir');
    expect((await runCli(['init', '--config-dir', home])).exitCode).toBe(0);
    await rm(join(home, 'identity.key'));
    await mkdir(join(home, 'identity.key'), { mode: 0o700 });
    const r = await runCli(['tor', 'address', '--json', '--config-dir', home]);
    expect(r.exitCode).toBe(EXIT_CODES.config);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('ERR_IDENTITY_CORRUPT');
  });
});
