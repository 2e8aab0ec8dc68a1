// A reader that stops early (`mmogit recall --json | head`) closes the CLI's stdout mid-answer: the real binary
// must stop quietly (exit 0, no stack trace), as a POSIX tool does on SIGPIPE.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'mmogit-epipe-'));
  const { agent } = await Agent.init({ configDir: join(home, 'a') });
  // ~600 KiB of JSON: far more than a pipe holds, so the CLI is still writing when the reader goes
  for (let i = 0; i < 1_000; i++)
    await agent.remember({ type: 'observation', content: `${i} ${'x'.repeat(400)}` });
}, 120_000);
afterAll(() => rm(home, { recursive: true, force: true }));

describe('closed stdout', () => {
  it('recall --json into a reader that closes after its first chunk: exit 0, nothing on stderr', async () => {
    const full = await runCli(['recall', '--json', '--limit', '100000', '--config-dir', join(home, 'a')]);
    expect(full.stdout.length, 'the answer must be bigger than a pipe').toBeGreaterThan(256 * 1024);
    const child = spawn(
      process.execPath,
      [MMOGIT_BIN, 'recall', '--json', '--limit', '100000', '--config-dir', join(home, 'a')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.once('exit', (c, s) => r([c, s])),
    );
    clearTimeout(killer);
    expect(signal).toBeNull();
    expect(err).toBe('');
    expect(code).toBe(0);
  }, 60_000);
});
