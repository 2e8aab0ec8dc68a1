// The runnable SDK examples (examples/*.mjs), each run as a newcomer would run it: `node examples/<x>.mjs` in
// its own process, on this test run's private Tor network. They import `mmogit` by package self-reference, so
// dist/ must be built (`npm test` runs tsc first). Each must exit 0, print the facts it promises, and leave no
// process and no temporary directory behind (its TMPDIR is a directory of this test, so every tor it starts
// has that directory on its command line).
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { liveProcesses } from './helpers/processes.js';
import { type NodeRun, runNode } from './helpers/run-node.js';
import { testNetwork } from './helpers/tor.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE_TIMEOUT_MS = 120_000;
const ONION = /[a-z2-7]{56}\.onion/;

/** Runs `node examples/<file> …args` with the test network and a private TMPDIR; kills it after the timeout. */
function runExample(file: string, args: string[], env: Record<string, string>): Promise<NodeRun> {
  return runNode(join('examples', file), args, { cwd: root, env, timeoutMs: EXAMPLE_TIMEOUT_MS });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('examples', () => {
  let networkDir = '';
  let tmp = '';

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist/src/index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` (npm test builds it before vitest)');
    }
    networkDir = (await testNetwork()).dir;
  });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'mmogit-examples-test-'));
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** Runs an example, checks exit 0, and that it left neither a process nor a temp dir. */
  async function run(file: string, args: string[] = []): Promise<string> {
    const r = await runExample(file, args, { MMOGIT_TOR_NETWORK: networkDir, TMPDIR: tmp });
    expect(r.signal, `killed after ${EXAMPLE_TIMEOUT_MS / 1000} s; stderr:\n${r.stderr}`).toBeNull();
    expect(r.exitCode, `stderr:\n${r.stderr}`).toBe(0);
    expect(r.stderr).toContain(`using the private Tor network in ${networkDir}`);
    expect(liveProcesses(tmp)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]); // its temp dir (agents' config dirs, tor data) is gone
    return r.stdout;
  }

  it(
    'two-agents-messaging: alice and bob exchange verified messages over the PQ channel',
    async () => {
      const out = await run('two-agents-messaging.mjs');
      expect(out).toMatch(new RegExp(`^alice ${ONION.source}$`, 'm'));
      expect(out).toMatch(new RegExp(`^bob   ${ONION.source}$`, 'm'));
      expect(out).toContain('channel: hybrid-x25519-mlkem768 over tor');
      expect(out).toContain('alice → bob: delivered');
      expect(out).toContain('bob → alice: delivered');
      expect(out).toContain(
        'bob received from alice: "hello bob, this came through two onion services" (signature verified)',
      );
      expect(out).toMatch(/alice received from bob: "hi alice, got .*" \(signature verified\)/);
    },
    EXAMPLE_TIMEOUT_MS + 10_000,
  );

  it(
    'discover-and-sync: carol discovers alice and bob, syncs, and recalls their memories',
    async () => {
      const out = await run('discover-and-sync.mjs');
      // A reused long-lived network (MMOGIT_TEST_NETWORK) may still hold adverts of agents from earlier runs.
      expect(out).toMatch(
        /^discovered by carol: (alice, bob|bob, alice)( \(and \d+ agent\(s\) from earlier runs\))?$/m,
      );
      expect(out).toMatch(/^carol ⇄ alice: received 1, sent \d+ entries/m);
      expect(out).toMatch(/^carol ⇄ bob: received 1, sent \d+ entries/m);
      expect(out).toContain('carol recalls 3 memories (2 from peers), all verified:');
      expect(out).toContain('[learning] onion descriptors take ~1 s to upload — by alice');
      expect(out).toContain('[observation] the DHT answers within a second here — by bob');
      expect(out).toContain('[reflection] I found my peers without their addresses — by carol');
    },
    EXAMPLE_TIMEOUT_MS + 10_000,
  );

  it(
    'agent-loop: a worker driven by inbox --follow and a hook answers tasks in their threads',
    async () => {
      const out = await run('agent-loop.mjs');
      expect(out).toContain('count-1: 8 words (result verified, same thread: true)');
      expect(out).toContain('count-2: 6 words (result verified, same thread: true)');
      expect(out).toContain('worker loop handled 2 task(s)');
      expect(out).toContain('hook journaled 2 task proposal(s)');
    },
    EXAMPLE_TIMEOUT_MS + 10_000,
  );

  for (const auth of ['cookie', 'password'] as const) {
    it(
      `attach-existing-tor (${auth}): the attached agent's onion is reachable and the tor outlives it`,
      async () => {
        const out = await run('attach-existing-tor.mjs', ['--auth', auth]);
        const pid = Number(
          /^tor: pid (\d+), control port 127\.0\.0\.1:\d+, (\w+) authentication$/m.exec(out)?.[1],
        );
        expect(out).toContain(`, ${auth} authentication`);
        expect(out).toMatch(new RegExp(`^dora ${ONION.source} \\(tor mode: attach\\)$`, 'm'));
        expect(out).toMatch(/^eve reached dora's onion over tor \(hybrid-x25519-mlkem768\) in \d+ ms$/m);
        expect(out).toContain(
          'dora received from eve: "hello dora, your onion is served by a tor you did not start" (signature verified)',
        );
        expect(out).toContain('after dora stopped, the tor is still running: yes');
        // …and the example stopped the tor it started in its place of "your" tor.
        expect(pid).toBeGreaterThan(0);
        expect(alive(pid)).toBe(false);
      },
      EXAMPLE_TIMEOUT_MS + 10_000,
    );
  }

  it('fails with one clear line and exit code 1 when the network dir holds no network', async () => {
    const r = await runExample('two-agents-messaging.mjs', ['--network', join(tmp, 'nowhere')], {
      TMPDIR: tmp,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^two-agents-messaging: .*nowhere.* \[ERR_NETWORK_CONFIG\]$/,
    );
    expect(await readdir(tmp)).toEqual([]);
  });
});
