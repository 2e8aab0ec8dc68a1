// The signature pool (src/memory/_verify-pool.ts) in a process of its own: a batch that goes to the workers is
// answered (a forged signature in a worker's share found), and the idle pool then lets the process exit. Before
// the fix the process hung after its answer (its workers were unref'd before their 'message' listeners were
// added, which refs them again), so every CLI `recall` of 512+ entries printed its result and never exited.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PARALLEL_MIN } from '../../src/memory/_verify-pool.js';

describe('verify pool', () => {
  it('answers a batch of PARALLEL_MIN+ signatures and lets the process exit on its own', async () => {
    const child = spawn(
      join(process.cwd(), 'node_modules/.bin/vite-node'),
      [join(process.cwd(), 'test/memory/fixtures/verify-and-exit.ts')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    // generous: vite-node's start on a loaded machine; a hang never ends, so any bound tells them apart
    const killer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.once('exit', (c, s) => r([c, s])),
    );
    clearTimeout(killer);
    expect(out.trim(), err).toBe(`${PARALLEL_MIN + 87}/${PARALLEL_MIN + 88}`);
    expect(signal, 'the process had to be killed: it did not exit after its answer').toBeNull();
    expect(code, err).toBe(0);
  }, 60_000);
});
