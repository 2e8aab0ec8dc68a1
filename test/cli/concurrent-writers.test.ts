import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { runCli } from '../helpers/cli.js';

// Memory commands open the repository themselves, also while a daemon runs: the daemon holds its own store on
// the same repository. This test is that situation without tor: this process keeps a store open and writes in
// a loop (as a daemon storing received messages and synced entries does) while CLI processes write at the same
// time. Every ref move is a compare-and-swap under git's lock-file rules, so no write may be lost.

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'mmogit-writers-'));
  await (await Agent.init({ configDir: home })).agent.close();
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('the CLI and a running agent write to one repository at once', () => {
  it('loses no entry and leaves a repository git fsck accepts', async () => {
    const agent = await Agent.open({ configDir: home });
    const store = await agent.memory();
    let running = true;
    let inProcess = 0;
    const loop = (async () => {
      // Bounded and paced: enough commits to interleave with every CLI write, few enough to list quickly.
      while (running && inProcess < 200) {
        await store.rememberMany(
          Array.from({ length: 5 }, (_, i) => ({
            type: 'observation' as const,
            content: `daemon ${inProcess + i}`,
          })),
        );
        await store.post(`daemon post ${inProcess}`);
        inProcess += 5;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const cli = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 3; i++) {
        const r = await runCli(['remember', '-t', 'task', `cli ${w}.${i}`, '--config-dir', home]);
        expect(r.exitCode, r.stderr).toBe(0);
        const p = await runCli(['post', `cli post ${w}.${i}`, '--config-dir', home], {});
        expect(p.exitCode, p.stderr).toBe(0);
      }
    });
    await Promise.all(cli);
    running = false;
    await loop;
    await agent.close();

    // Verifying every entry of a few hundred takes seconds; on a loaded CI machine, more than the default bound.
    const shown = await runCli(['show', '--json', '--config-dir', home], { timeoutMs: 150_000 });
    const items = shown.json<{ kind: string; content?: string; text?: string; verified: boolean }[]>();
    expect(items.every((i) => i.verified)).toBe(true);
    const texts = new Set(items.map((i) => i.content ?? i.text));
    for (let w = 0; w < 4; w++) {
      for (let i = 0; i < 3; i++) {
        expect(texts.has(`cli ${w}.${i}`)).toBe(true);
        expect(texts.has(`cli post ${w}.${i}`)).toBe(true);
      }
    }
    for (let n = 0; n < inProcess; n++) expect(texts.has(`daemon ${n}`)).toBe(true);
    expect(items).toHaveLength(24 + inProcess + inProcess / 5);
    execFileSync('git', ['--git-dir', join(home, 'memory'), 'fsck', '--strict', '--no-dangling'], {
      stdio: 'pipe',
    });
  }, 400_000);
});
