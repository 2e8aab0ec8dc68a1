// config.json as the agent reads it at start: what it accepts, and the typed error for what it does not.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/agent/runtime-config.js';

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length) await rm(dirs.pop() as string, { recursive: true, force: true });
});

async function withConfig(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mmogit-config-'));
  dirs.push(dir);
  await writeFile(join(dir, 'config.json'), text);
  return dir;
}

describe('loadAgentConfig', () => {
  it('reads a missing file as an empty config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmogit-config-'));
    dirs.push(dir);
    expect(await loadAgentConfig(dir)).toEqual({});
  });

  it('keeps a valid inboundRate as given', async () => {
    const dir = await withConfig(
      '{"inboundRate": {"capacity": 500, "refillPerSecond": 2.5}, "maxFileBytes": 10}',
    );
    expect(await loadAgentConfig(dir)).toEqual({
      inboundRate: { capacity: 500, refillPerSecond: 2.5 },
      maxFileBytes: 10,
    });
  });

  it.each([
    ['a number', '5'],
    ['a zero capacity', '{"capacity": 0, "refillPerSecond": 1}'],
    ['a fractional capacity', '{"capacity": 1.5, "refillPerSecond": 1}'],
    ['a zero rate', '{"capacity": 1, "refillPerSecond": 0}'],
    ['a rate given as a string', '{"capacity": 1, "refillPerSecond": "10"}'],
    ['a missing rate', '{"capacity": 1}'],
    ['an array', '[50, 10]'],
  ])('refuses an inboundRate that is %s with ERR_NETWORK_CONFIG', async (_what, value) => {
    const dir = await withConfig(`{"inboundRate": ${value}}`);
    await expect(loadAgentConfig(dir)).rejects.toMatchObject({
      code: 'ERR_NETWORK_CONFIG',
      message: expect.stringContaining('"inboundRate" must be'),
    });
  });

  it.each([
    ['not JSON', '{', 'is not valid JSON'],
    ['not an object', '[]', 'must hold a JSON object'],
    ['an unknown policy', '{"policy": "carrier-pigeon"}', 'unknown policy'],
    ['a negative maxFileBytes', '{"maxFileBytes": -1}', '"maxFileBytes" must be'],
  ])('refuses a config that is %s', async (_what, text, message) => {
    const dir = await withConfig(text);
    await expect(loadAgentConfig(dir)).rejects.toMatchObject({
      code: 'ERR_NETWORK_CONFIG',
      message: expect.stringContaining(message),
    });
  });
});
