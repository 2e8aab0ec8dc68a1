// `mmogit mcp` checked by a client we did not write: the official MCP Inspector's CLI mode
// (@modelcontextprotocol/inspector-cli), spawning the real built CLI over stdio.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';
import { runNode } from '../helpers/run-node.js';

// inspector-cli 1.0.3 looks for its own package.json relative to the working directory, so it runs from its
// build directory (where `../package.json` is its own).
const INSPECTOR_BUILD = join(
  dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/package.json')),
  'build',
);

let root: string;
let home: string;

async function inspect(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await runNode(
    join(INSPECTOR_BUILD, 'index.js'),
    [process.execPath, MMOGIT_BIN, 'mcp', '--config-dir', home, ...args],
    { cwd: INSPECTOR_BUILD, timeoutMs: 60_000 },
  );
  expect(r.timedOut).toBe(false);
  return r;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-inspector-'));
  home = join(root, 'agent');
  await runCli(['init', '--json', '--config-dir', home]);
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the MCP Inspector CLI against mmogit mcp', () => {
  it('lists the tools and the inbox resource', async () => {
    const tools = await inspect(['--method', 'tools/list']);
    expect(tools.exitCode, tools.stderr).toBe(0);
    const names = (JSON.parse(tools.stdout) as { tools: { name: string }[] }).tools.map((t) => t.name);
    expect(names).toContain('send_message');
    expect(names).toHaveLength(10);
    const resources = await inspect(['--method', 'resources/list']);
    expect(JSON.parse(resources.stdout)).toMatchObject({ resources: [{ uri: 'mmogit://inbox' }] });
  });

  it('calls tools with its own argument encoding, and gets our typed errors back', async () => {
    const remember = await inspect([
      '--method',
      'tools/call',
      '--tool-name',
      'remember',
      '--tool-arg',
      'type=learning',
      '--tool-arg',
      'content=written by the inspector',
    ]);
    expect(remember.exitCode, remember.stderr).toBe(0);
    expect(JSON.parse(remember.stdout).isError).toBeUndefined();
    const recall = await inspect(['--method', 'tools/call', '--tool-name', 'recall']);
    expect(JSON.parse(recall.stdout).structuredContent.memories[0]).toMatchObject({
      content: 'written by the inspector',
      verified: true,
    });
    const bad = await inspect([
      '--method',
      'tools/call',
      '--tool-name',
      'read_inbox',
      '--tool-arg',
      'limit=0',
    ]);
    expect(JSON.parse(bad.stdout)).toMatchObject({
      isError: true,
      structuredContent: { error: { code: 'ERR_INVALID_ARGUMENT' } },
    });
  });
});
