// `npm run demo` itself, as CI runs it: the compiled demo brings up its own private Tor network, three
// agents, discovery, PQ messages and memory sync, and must leave no tor process behind.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { liveProcesses } from './helpers/processes.js';
import { runNode } from './helpers/run-node.js';

const demo = fileURLToPath(new URL('../dist/scripts/demo.js', import.meta.url));

it('runs the demo end to end with --json and stops everything it started', async () => {
  expect(existsSync(demo), 'dist/ is built by `npm test` before vitest').toBe(true);
  const { exitCode: code, stdout, stderr } = await runNode(demo, ['--json'], { timeoutMs: 540_000 });
  expect(code, stderr).toBe(0);
  const summary = JSON.parse(stdout) as {
    ok: boolean;
    agents: { onion: string }[];
    discovery: { found: string[] };
    messages: { status: string; suite: string }[];
    recall: { fromPeers: number; allVerified: boolean };
  };
  expect(summary.ok).toBe(true);
  expect(summary.agents).toHaveLength(3);
  expect(summary.discovery.found.length).toBeGreaterThanOrEqual(1);
  expect(
    summary.messages.every((m) => m.status === 'delivered' && m.suite === 'hybrid-x25519-mlkem768'),
  ).toBe(true);
  expect(summary.recall.fromPeers).toBeGreaterThanOrEqual(2);
  expect(summary.recall.allVerified).toBe(true);
  expect(stderr).toContain('network bootstrap'); // progress went to stderr
  // Every process the demo started is gone.
  expect(liveProcesses('mmogit-demo-')).toEqual([]);
}, 600_000);
