// kill -9 of a real `mmogit remember` process mid-write, over and over on one memory repository: afterwards
// `git fsck --strict` is clean, every entry a `remember` reported stored (exit 0) is recalled and verified, a
// killed write is there whole or not at all, and the next write succeeds (a lock left by the killed writer does
// not block it). The kill instant follows the write: it starts at 0.8 × a whole write's measured time (most of
// it is Node's start-up), moves later after a kill that came before the commit and earlier after a write that
// finished first, with a random jitter: so the kills cluster where the objects, the commit and the ref move
// happen, whatever the machine's load. Runs: MMOGIT_KILL_RUNS (default 5).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { summary } from './_helpers.js';
import {
  danglingObjects,
  fsckStrict,
  kill9,
  killRuns,
  seededRandom,
  sleep,
  spawnCli,
} from './kill-harness.js';

const RUNS = killRuns(5);
let root: string;
let home: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-kill-write-'));
  home = join(root, 'a');
  const r = await runCli(['init', '--json', '--config-dir', home]);
  expect(r.exitCode, r.stderr).toBe(0);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const remember = (content: string) =>
  spawnCli(['remember', '-t', 'observation', content, '--tags', 'kill', '--json', '--config-dir', home]);

async function recalled(): Promise<Map<string, { verified: boolean }>> {
  const r = await runCli(['recall', '--json', '--all', '--tag', 'kill', '--config-dir', home], {
    timeoutMs: 120_000,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  const items = r.json<{ content: string; verified: boolean }[]>();
  return new Map(items.map((e) => [e.content, e]));
}

describe('kill -9 mid-write (mmogit remember)', () => {
  it(
    `${RUNS} writers SIGKILLed mid-write: fsck clean, nothing reported stored is lost`,
    async () => {
      const random = seededRandom('kill-write');
      // the duration of a whole write, to place the kills in it
      const full: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const w = await remember(`warm-up ${i}`).exited;
        expect(w.code).toBe(0);
        full.push(Date.now() - t0);
      }
      const span = summary(full).median;
      const stored = new Set<string>(['warm-up 0', 'warm-up 1', 'warm-up 2']);
      const killed: string[] = [];
      let completedBeforeKill = 0;
      let at = 0.8 * span;
      let committedKilled = 0;
      for (let i = 0; i < RUNS; i++) {
        const content = `kill-write ${i}`;
        const w = remember(content);
        await sleep(Math.max(0, Math.round(at + span * 0.2 * (random() - 0.5))));
        try {
          await kill9(w.pid);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
        }
        const end = await w.exited;
        if (end.code === 0) {
          stored.add(content); // it answered before the kill: it must be there
          completedBeforeKill++;
          at -= 0.05 * span;
        } else {
          killed.push(content);
          const r = await recalled();
          if (r.has(content)) committedKilled++;
          else at += 0.05 * span;
        }
        // the next write after each kill must succeed
        const after = await remember(`after-kill ${i}`).exited;
        expect(after.code, `write after kill ${i}`).toBe(0);
        stored.add(`after-kill ${i}`);
        if ((i + 1) % 10 === 0) process.stderr.write(`[kill] write run ${i + 1}/${RUNS}\n`);
      }
      expect(await fsckStrict(home)).toBe('');
      const dangling = await danglingObjects(home);
      const got = await recalled();
      const lost = [...stored].filter((c) => got.get(c)?.verified !== true);
      // a killed write is there whole (verified) or absent; never an unverifiable leftover
      const unverified = [...got.values()].filter((e) => !e.verified);
      const killedButStored = killed.filter((c) => got.has(c)).length;
      expect(killedButStored).toBe(committedKilled);
      console.log(
        `[reliability] kill -9 mid-write: ${RUNS} runs (write ~${span} ms), ${killed.length} killed mid-write ` +
          `(${killedButStored} of them had committed), ${completedBeforeKill} finished first, ${dangling} dangling objects; ` +
          `losses ${lost.length}, ` +
          `unverified ${unverified.length}, fsck clean`,
      );
      expect(lost).toEqual([]);
      expect(unverified).toEqual([]);
    },
    60_000 + RUNS * 15_000,
  );
});
