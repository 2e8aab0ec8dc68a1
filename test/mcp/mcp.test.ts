// `mmogit mcp` without a network: the official MCP client over stdio against the real built CLI — the tool
// list and schemas, typed tool errors for schema violations and a stopped daemon, memory tools, and a stdout
// that carries nothing but MCP frames.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MMOGIT_BIN, runCli } from '../helpers/cli.js';
import { runNode } from '../helpers/run-node.js';
import { connectMcp, type McpSession, structured } from './_client.js';

let root: string;
let home: string;
let onion: string;
let session: McpSession;

const TOOL_NAMES = [
  'whoami',
  'send_message',
  'read_inbox',
  'discover_agents',
  'advertise',
  'ping_peer',
  'remember',
  'recall',
  'sync_memory',
  'contacts',
];
const SOME_ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';

interface ToolErrorBody {
  error: { code: string; message: string; details?: { problems?: { field: string }[] } };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-mcp-'));
  home = join(root, 'agent');
  const init = await runCli(['init', '--json', '--config-dir', home]);
  onion = init.json<{ onion: string }>().onion;
  session = await connectMcp(home);
}, 60_000);

afterAll(async () => {
  await session?.close();
  await rm(root, { recursive: true, force: true });
});

describe('mmogit mcp over stdio (official MCP client)', () => {
  it('lists every tool with a one-line description and a JSON Schema for its arguments', async () => {
    const { tools } = await session.client.listTools();
    expect(tools.map((t) => t.name)).toEqual(TOOL_NAMES);
    for (const t of tools) {
      expect(t.description, t.name).toMatch(/^[^\n]{20,200}$/);
      expect(t.inputSchema.type, t.name).toBe('object');
    }
    const send = tools.find((t) => t.name === 'send_message')!;
    expect(Object.keys(send.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['peer', 'text', 'type', 'thread', 'reply_to', 'body', 'meta']),
    );
    expect(send.inputSchema.required).toEqual(['peer']);
    const inbox = tools.find((t) => t.name === 'read_inbox')!;
    expect(Object.keys(inbox.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['from', 'since', 'cursor', 'limit', 'wait_seconds']),
    );
    expect(tools.find((t) => t.name === 'recall')!.annotations?.readOnlyHint).toBe(true);
  });

  it('whoami answers from the identity while the daemon is stopped', async () => {
    const r = await session.client.callTool({ name: 'whoami', arguments: {} });
    expect(r.isError).toBeFalsy();
    expect(structured(r)).toMatchObject({ onion, daemon: { running: false } });
  });

  it('returns schema violations as tool errors carrying ERR_INVALID_ARGUMENT, and keeps serving', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['send_message', { text: 'no peer' }, 'peer'],
      ['send_message', { peer: SOME_ONION }, 'text'],
      ['read_inbox', { wait_seconds: 10_000 }, 'wait_seconds'],
      ['read_inbox', { limit: 'ten' }, 'limit'],
      ['read_inbox', { since: 'yesterday' }, 'since'],
      ['remember', { type: 'bogus', content: 'x' }, 'type'],
      ['advertise', { services: [] }, 'services'],
      ['discover_agents', { service: 'Not A Service!' }, 'service'],
      // Aliases are lower case (src/agent/contacts.ts): the schema refuses upper case before the daemon is asked.
      ['contacts', { action: 'add', alias: 'Bob', onion: SOME_ONION }, 'alias'],
      ['contacts', { action: 'remove', alias: 'a'.repeat(65) }, 'alias'],
    ];
    for (const [name, args, field] of cases) {
      const r = await session.client.callTool({ name, arguments: args });
      expect(r.isError, `${name} ${JSON.stringify(args)}`).toBe(true);
      const body = structured<ToolErrorBody>(r);
      expect(body.error.code).toBe('ERR_INVALID_ARGUMENT');
      expect(body.error.details?.problems?.map((p) => p.field)).toContain(field);
      expect((r.content as { text: string }[])[0]?.text).toContain('[ERR_INVALID_ARGUMENT]');
    }
    const bad = await session.client.callTool({
      name: 'send_message',
      arguments: { peer: 'Not an onion!', text: 'hi' },
    });
    expect(structured<ToolErrorBody>(bad).error.code).toBe('ERR_INVALID_ONION');
    const badOnion = await session.client.callTool({
      name: 'ping_peer',
      arguments: { peer: `${'a'.repeat(56)}.onion` },
    });
    expect(structured<ToolErrorBody>(badOnion).error.code).toBe('ERR_INVALID_ONION');
    // A well-formed alias goes to the daemon, which resolves contacts.
    const alias = await session.client.callTool({
      name: 'send_message',
      arguments: { peer: 'bob', text: 'hi' },
    });
    expect(structured<ToolErrorBody>(alias).error.code).toBe('ERR_DAEMON_NOT_RUNNING');
    const after = await session.client.callTool({ name: 'whoami', arguments: {} });
    expect(after.isError).toBeFalsy();
  });

  it('an unknown tool is a JSON-RPC invalid-params error with our code in its data', async () => {
    const e = await session.client.callTool({ name: 'launch_rockets', arguments: {} }).catch((x) => x);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).code).toBe(-32602);
    expect((e as McpError).data).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('network tools say ERR_DAEMON_NOT_RUNNING while the daemon is stopped', async () => {
    for (const [name, args] of [
      ['send_message', { peer: SOME_ONION, text: 'hi' }],
      ['read_inbox', {}],
      ['ping_peer', { peer: SOME_ONION }],
      ['contacts', {}],
    ] as const) {
      const r = await session.client.callTool({ name, arguments: args });
      expect(r.isError, name).toBe(true);
      expect(structured<ToolErrorBody>(r).error.code, name).toBe('ERR_DAEMON_NOT_RUNNING');
    }
    const read = await session.client.readResource({ uri: 'mmogit://inbox' }).catch((x) => x);
    expect((read as McpError).data).toMatchObject({ code: 'ERR_DAEMON_NOT_RUNNING' });
  });

  it('remember and recall write and read the agent’s own git memory (the CLI sees the same entry)', async () => {
    const content = `mcp memory ${Date.now()}`;
    const w = await session.client.callTool({
      name: 'remember',
      arguments: { type: 'learning', content, tags: ['mcp'], confidence: 0.7 },
    });
    expect(w.isError, JSON.stringify(w)).toBeFalsy();
    const r = await session.client.callTool({ name: 'recall', arguments: { tag: 'mcp' } });
    const memories = structured<{ memories: Record<string, unknown>[] }>(r).memories;
    expect(memories[0]).toMatchObject({ content, author: onion, verified: true, type: 'learning' });
    const cli = await runCli(['recall', '--tag', 'mcp', '--json', '--config-dir', home]);
    expect(cli.json<{ content: string }[]>()[0]?.content).toBe(content);
  });
});

describe('mmogit mcp stdout discipline', () => {
  it('writes only JSON-RPC frames on stdout, even with debug logging and malformed input', async () => {
    const lines = [
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ].map((m) => JSON.stringify(m));
    lines.push(
      '{"this is": not json',
      '[]',
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      }),
    );
    const r = await runNode(MMOGIT_BIN, ['mcp', '--config-dir', home], {
      timeoutMs: 30_000,
      env: { DEBUG: 'mmogit:*' },
      input: `${lines.join('\n')}\n`,
    });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    const frames = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { jsonrpc: string; id?: number });
    expect(frames.every((f) => f.jsonrpc === '2.0')).toBe(true);
    expect(frames.map((f) => f.id)).toEqual(expect.arrayContaining([1, 2]));
    expect(r.stderr).toContain('mmogit:mcp');
  });

  it('the SDK client over stdio: malformed lines between its requests are answered, and it keeps being served', async () => {
    const s = await connectMcp(home);
    try {
      // What reaches the client, as its transport decodes it (the client drops answers to ids it never sent).
      const seen: { id?: unknown; error?: { code: number; data?: unknown } }[] = [];
      const onmessage = s.transport.onmessage;
      s.transport.onmessage = (m) => {
        seen.push(m as (typeof seen)[number]);
        onmessage?.(m);
      };
      s.client.onerror = () => {};
      // The server's stdin, which the SDK's transport does not expose: raw bytes go to the spawned process.
      const stdin = (s.transport as unknown as { _process: ChildProcess })._process.stdin as Writable;
      stdin.write('this is not json\n');
      stdin.write('{"jsonrpc":"2.0","id":"raw-1","method":"tools/call","params":{"name":"whoami"'); // cut…
      stdin.write('\n');
      // JSON but not a valid request: a progressToken must be a string or an integer.
      await s.transport.send({
        jsonrpc: '2.0',
        id: 'raw-2',
        method: 'tools/call',
        params: { name: 'whoami', arguments: {}, _meta: { progressToken: {} } },
      } as never);
      // Near the 4 MiB bound, one line: answered like any other.
      const big = await s.client.callTool({
        name: 'whoami',
        arguments: { pad: 'x'.repeat(3 * 1024 * 1024) },
      });
      expect(big.isError).toBeFalsy();
      const until = Date.now() + 10_000;
      while (seen.filter((m) => m.error).length < 3 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const errors = seen.filter((m) => m.error).map((m) => [m.id, m.error?.code, m.error?.data]);
      expect(errors).toEqual([
        [undefined, -32700, { code: 'ERR_INVALID_ARGUMENT' }],
        [undefined, -32700, { code: 'ERR_INVALID_ARGUMENT' }],
        ['raw-2', -32600, { code: 'ERR_INVALID_ARGUMENT' }],
      ]);
      const after = await s.client.callTool({ name: 'whoami', arguments: {} });
      expect(structured(after)).toMatchObject({ onion });
    } finally {
      await s.close();
    }
  });

  it('sends every other write to process.stdout to stderr once MCP owns it', async () => {
    const stdio = new URL('../../dist/src/mcp/stdio.js', import.meta.url).href;
    const script = `const { claimStdout } = await import(${JSON.stringify(stdio)});
      const frames = claimStdout(); console.log('stray log'); process.stdout.write('stray write\\n');
      frames.write('{"jsonrpc":"2.0"}\\n');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toBe('{"jsonrpc":"2.0"}\n');
    expect(err).toContain('stray log');
    expect(err).toContain('stray write');
  });

  it('an oversized request ends the session cleanly instead of buffering without bound', async () => {
    const child = spawn(process.execPath, [MMOGIT_BIN, 'mcp', '--config-dir', home], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stdin.on('error', () => {}); // the server stops reading once the line is too long
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdin.end(
      `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(5 * 1024 * 1024)}"}}\n`,
    );
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(timer);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(out).toBe('');
  });

  it('refuses to start without an identity, with a typed error and no frames', async () => {
    const r = await runNode(MMOGIT_BIN, ['mcp', '--config-dir', join(root, 'nobody')], { timeoutMs: 30_000 });
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/\[ERR_CONFIG_DIR_MISSING\]\n$/);
  });
});
