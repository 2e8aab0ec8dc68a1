// `mmogit mcp` against a hostile host, in process: the official MCP SDK `Client` over the SDK's in-memory
// transport, and raw lines through the stdio path (our `LineTransport`), against a recording stand-in for the
// daemon. Wrong JSON types for every argument,
// huge limits, nesting, path-like strings, unknown tools and malformed JSON-RPC: each a typed error, no daemon
// call for what the schema refuses, no stack trace, and an answer to every request that has an id.
import { PassThrough, Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpError, ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MmogitError } from '../../src/errors.js';
import type { AgentLink } from '../../src/mcp/daemon-link.js';
import { createMcpServer, MAX_TOOL_CALLS_IN_FLIGHT } from '../../src/mcp/server.js';
import { LineTransport } from '../../src/mcp/stdio-transport.js';

const ONION = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';
const calls: string[] = [];
const link: AgentLink = {
  configDir: '/nonexistent/mmogit-hostile',
  async identity() {
    return { onion: ONION, pubkey: 'ab'.repeat(32) };
  },
  async call<T>(method: string): Promise<T> {
    calls.push(method);
    return (method === 'inbox' ? [] : {}) as T;
  },
  async withMemory<T>(fn: (store: never) => Promise<T>): Promise<T> {
    calls.push('memory');
    return fn({ recall: async () => [], remember: async () => ({}) } as never);
  },
};

/** The official MCP client, connected in memory to our server over `link`. */
async function hostFor(l: AgentLink): Promise<Client> {
  const server = createMcpServer({ link: l, version: '0.0.0-test' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const host = new Client({ name: 'hostile-host', version: '1.0.0' });
  await host.connect(a);
  return host;
}

let client: Client;

beforeAll(async () => {
  client = await hostFor(link);
});

afterAll(async () => {
  await client?.close();
});

interface ToolError {
  error: { code: string; message: string; details?: { problems?: { field: string }[] } };
}

const errorOf = (r: unknown) => (r as { structuredContent: ToolError }).structuredContent.error;
const NO_STACK = /\n\s+at |\.ts:\d+|node:internal/;

/** JSON values of every type but the one a JSON Schema property asks for. */
function wrongValues(schema: { type?: string | string[] }): unknown[] {
  const all: Record<string, unknown[]> = {
    string: ['text', ''],
    number: [1.5, -1, 1e308],
    integer: [1.5, -1, 1e308],
    boolean: [true],
    array: [['x'], []],
    object: [{ a: 1 }],
    null: [null],
  };
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const ok = new Set(types.flatMap((t) => (t === 'integer' ? ['integer'] : [t])));
  return Object.entries(all)
    .filter(([t]) => !ok.has(t) && !(ok.has('number') && t === 'integer'))
    .flatMap(([, v]) => v);
}

describe('mmogit mcp against a hostile host', () => {
  it('refuses a value of the wrong JSON type for every argument of every tool, before the daemon', async () => {
    const { tools } = await client.listTools();
    let cases = 0;
    for (const t of tools) {
      const props = (t.inputSchema.properties ?? {}) as Record<string, { type?: string }>;
      for (const [field, schema] of Object.entries(props)) {
        if (schema.type === undefined) continue; // `body`: any JSON value
        for (const value of wrongValues(schema)) {
          calls.length = 0;
          const r = await client.callTool({ name: t.name, arguments: { [field]: value } });
          const text = JSON.stringify(r);
          expect(r.isError, `${t.name}.${field} = ${JSON.stringify(value)}`).toBe(true);
          expect(errorOf(r).code, text).toBe('ERR_INVALID_ARGUMENT');
          expect(calls, `${t.name}.${field}`).toEqual([]);
          expect(text).not.toMatch(NO_STACK);
          cases++;
        }
      }
    }
    expect(cases).toBeGreaterThan(100);
  });

  it('bounds every limit and timeout: huge, negative, fractional and zero values are usage errors', async () => {
    const bad: [string, Record<string, unknown>][] = [
      ['read_inbox', { limit: 1e9 }],
      ['read_inbox', { limit: 0 }],
      ['read_inbox', { wait_seconds: 1e308 }],
      ['recall', { limit: Number.MAX_SAFE_INTEGER }],
      ['recall', { hours: -1 }],
      ['discover_agents', { service: 'messaging', limit: 1e6 }],
      ['discover_agents', { service: 'messaging', timeout_seconds: 0 }],
      ['advertise', { services: ['x'], ttl_seconds: 1e12 }],
      ['sync_memory', { timeout_seconds: 86_400 }],
      ['sync_memory', { peers: Array.from({ length: 1_000 }, () => ONION) }],
      ['advertise', { services: Array.from({ length: 17 }, (_, i) => `s${i}`) }],
      ['remember', { type: 'observation', content: 'x', tags: Array.from({ length: 65 }, () => 't') }],
      ['send_message', { peer: ONION, text: 'x'.repeat(65_537) }],
    ];
    for (const [name, args] of bad) {
      calls.length = 0;
      const r = await client.callTool({ name, arguments: args });
      expect(r.isError, `${name} ${JSON.stringify(args).slice(0, 60)}`).toBe(true);
      expect(errorOf(r).code).toBe('ERR_INVALID_ARGUMENT');
      expect(calls).toEqual([]);
    }
  });

  it('refuses a send_message body nested past the daemon’s limit as a usage error (was ERR_INTERNAL)', async () => {
    // 100,000 levels: encoding it for the daemon overflowed the stack.
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    for (const body of [deep, JSON.parse(`${'{"a":'.repeat(33)}1${'}'.repeat(33)}`)]) {
      calls.length = 0;
      const r = await client.callTool({ name: 'send_message', arguments: { peer: ONION, body } });
      expect(r.isError).toBe(true);
      expect(errorOf(r)).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      expect(errorOf(r).details?.problems?.[0]?.field).toBe('body');
      expect(calls).toEqual([]);
    }
    const nested = JSON.parse(`${'['.repeat(30)}1${']'.repeat(30)}`);
    const ok = await client.callTool({ name: 'send_message', arguments: { peer: ONION, body: nested } });
    expect(ok.isError).toBeFalsy();
    expect(calls).toEqual(['send']);
  });

  it('path-like and control-character strings never reach the daemon or the store as names', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['send_message', { peer: '../../../etc/passwd', text: 'x' }, 'ERR_INVALID_ONION'],
      ['ping_peer', { peer: '/home/user/.mmogit/identity.key' }, 'ERR_INVALID_ONION'],
      ['read_inbox', { from: '..\\..\\x' }, 'ERR_INVALID_ONION'],
      ['send_message', { peer: '\u001b]0;pwned\u0007bob', text: 'x' }, 'ERR_INVALID_ONION'],
      ['contacts', { action: 'add', alias: '../evil', onion: ONION }, 'ERR_INVALID_ARGUMENT'],
      [
        'contacts',
        { action: 'add', alias: 'bob', onion: '../../../../../../etc/passwd' },
        'ERR_INVALID_ONION',
      ],
      ['recall', { author: '../../../../etc/passwd' }, 'ERR_INVALID_ONION'],
      ['sync_memory', { peers: ['/etc/passwd/../../../../x'] }, 'ERR_INVALID_ONION'],
      ['send_message', { peer: ONION, text: 'x', thread: 'x'.repeat(129) }, 'ERR_INVALID_ARGUMENT'],
      ['send_message', { peer: ONION, text: 'x', type: '../x' }, 'ERR_INVALID_ARGUMENT'],
      ['discover_agents', { service: '../../x' }, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [name, args, code] of cases) {
      calls.length = 0;
      const r = await client.callTool({ name, arguments: args });
      expect(r.isError, `${name} ${JSON.stringify(args)}`).toBe(true);
      expect(errorOf(r).code, JSON.stringify(r)).toBe(code);
      expect(calls.filter((c) => c !== 'memory')).toEqual([]);
      expect(JSON.stringify(r)).not.toMatch(NO_STACK);
    }
  });

  it('a request with params of the wrong shape is -32602 Invalid params, not -32603 Internal error', async () => {
    const requests: { method: string; params?: unknown }[] = [
      { method: 'tools/call', params: { name: 'whoami', arguments: [1, 2] } },
      { method: 'tools/call', params: { name: 5 } },
      { method: 'tools/list', params: { cursor: 5 } },
      { method: 'resources/list', params: { cursor: {} } },
      { method: 'resources/read', params: { uri: 42 } },
      { method: 'resources/read' },
      { method: 'resources/subscribe', params: { uri: null } },
      { method: 'resources/unsubscribe', params: { uri: [] } },
    ];
    for (const r of requests) {
      const e = await client.request(r as never, ResultSchema, { timeout: 5_000 }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, JSON.stringify(r)).toBeInstanceOf(McpError);
      expect((e as McpError).code, JSON.stringify(r)).toBe(-32602);
      expect((e as McpError).message).not.toMatch(NO_STACK);
    }
    // An unknown resource is -32002, its URI quoted and cut.
    const e = await client.readResource({ uri: `file:///${'a'.repeat(1_000_000)}` }).then(
      () => null,
      (err: unknown) => err,
    );
    expect((e as McpError).code).toBe(-32002);
    expect((e as McpError).message.length).toBeLessThan(300);
  });

  it('an unknown tool is -32602 whatever its name, without echoing megabytes of it', async () => {
    for (const name of ['x'.repeat(1_000_000), '__proto__', 'constructor', 'toString', '']) {
      const e = await client.callTool({ name, arguments: {} }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, name.slice(0, 20)).toBeInstanceOf(McpError);
      expect((e as McpError).code).toBe(-32602);
      expect((e as McpError).message.length).toBeLessThan(200);
      expect((e as McpError).data).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });
});

describe('the stdio path: raw lines from a hostile host', () => {
  /** Our stdio transport on in-memory streams, as `serveMcpStdio` wires it. */
  async function stdioSession() {
    const input = new PassThrough();
    const output = new PassThrough();
    let out = '';
    output.on('data', (d) => {
      out += d;
    });
    let overflowed = 0;
    let closed = 0;
    const transport = new LineTransport(input, output, { maxLineBytes: 64 * 1024 });
    const server = createMcpServer({ link, version: '0.0.0-test' });
    server.onclose = () => {
      closed++;
    };
    transport.onerror = (e) => {
      if (/over \d+ bytes/.test(e.message)) overflowed++;
    };
    await server.connect(transport);
    const frames = async (count: number) => {
      const until = Date.now() + 5_000;
      while (out.split('\n').filter(Boolean).length < count && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id?: unknown; error?: { code: number }; result?: unknown });
    };
    return {
      input,
      frames,
      overflowed: () => overflowed,
      closed: () => closed,
      close: () => server.close(),
    };
  }

  it('answers every malformed line that can be answered (JSON-RPC 2.0 §5.1) and keeps serving', async () => {
    const s = await stdioSession();
    const send = (line: string) => s.input.write(`${line}\n`);
    send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    );
    send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    send('this is not json'); // -32700, no id
    send('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"'); // cut: -32700
    // A progressToken must be a string or an integer: the SDK dropped this request without an answer.
    send(
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","_meta":{"progressToken":{}}}}',
    );
    send('{"jsonrpc":"1.0","id":3,"method":"ping"}'); // -32600, id 3
    send('{"jsonrpc":"2.0","id":null,"method":"ping"}'); // -32600, no usable id
    send('[{"jsonrpc":"2.0","id":4,"method":"ping"}]'); // a batch: -32600
    send('42'); // -32600
    send('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"whoami"}'); // params not an object: -32600
    send('{"jsonrpc":"2.0","id":5,"result":{}}'); // a response to nothing: dropped
    send('{"jsonrpc":"2.0","method":"notifications/bogus","params":7}'); // a bad notification: dropped
    send('');
    send('{"jsonrpc":"2.0","id":6,"method":"ping"}\r'); // CRLF line ending
    const frames = await s.frames(10);
    await s.close();
    const byId = (id: unknown) => frames.filter((f) => f.id === id);
    expect(byId(0)[0]?.result).toBeDefined();
    expect(frames.filter((f) => f.id === undefined && f.error?.code === -32700)).toHaveLength(2);
    expect(byId(2)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: -32600 }) })]);
    expect(byId(3)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: -32600 }) })]);
    expect(frames.filter((f) => f.id === undefined && f.error?.code === -32600)).toHaveLength(3);
    expect(byId(5)).toEqual([]);
    expect(byId(6)).toEqual([expect.objectContaining({ result: {} })]);
    expect(byId(7)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: -32600 }) })]);
    expect(frames).toHaveLength(10);
  });

  it('ends the session at a line over the bound, reading nothing after it', async () => {
    const s = await stdioSession();
    s.input.write(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(100_000)}`);
    s.input.write('"}}\n{"jsonrpc":"2.0","id":2,"method":"ping"}\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(s.overflowed()).toBe(1);
    expect(s.closed()).toBe(1); // the transport closed the session itself
    expect(await s.frames(0)).toEqual([]);
    await s.close();
  });
});

describe('the stdio transport (LineTransport)', () => {
  it('parses every line once: no second JSON.parse of a line behind it (the SDK transport parsed it again)', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const transport = new LineTransport(input, output, { maxLineBytes: 64 * 1024 });
    const got: unknown[] = [];
    transport.onmessage = (m) => got.push(m);
    await transport.start();
    const lines = [
      '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      '{"jsonrpc":"2.0","method":"notifications/message","params":{"text":"é€😀 über"}}',
      '{"jsonrpc":"2.0","id":2,"result":{}}',
      'not json',
      '{"jsonrpc":"1.0","id":3,"method":"ping"}',
    ];
    const parse = vi.spyOn(JSON, 'parse');
    try {
      // Split mid-line and mid-character, so the framing is what joins the pieces.
      const bytes = Buffer.from(`${lines.join('\r\n')}\n`);
      for (let at = 0; at < bytes.length; at += 7) input.write(bytes.subarray(at, at + 7));
      await new Promise((r) => setImmediate(r));
      for (const line of lines) {
        expect(
          parse.mock.calls.filter(([text]) => text === line),
          line,
        ).toHaveLength(1);
      }
    } finally {
      parse.mockRestore();
    }
    expect(got).toEqual([
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/message', params: { text: 'é€😀 über' } },
      { jsonrpc: '2.0', id: 2, result: {} },
    ]);
    const replies = String(output.read())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(replies.map((r) => [r.id, r.error.code])).toEqual([
      [undefined, -32700],
      [3, -32600],
    ]);
    await transport.close();
  });

  it('send waits for the output to drain when it is full, and fails once the output is gone', async () => {
    const written: string[] = [];
    let release: (() => void) | undefined;
    const output = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _e, callback) {
        written.push(String(chunk));
        release = () => callback();
      },
    });
    const transport = new LineTransport(new PassThrough(), output, { maxLineBytes: 1024 });
    await transport.start();
    let sent = false;
    const send = transport.send({ jsonrpc: '2.0', id: 1, result: { pad: 'x'.repeat(64) } }).then(() => {
      sent = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(written).toHaveLength(1);
    expect(sent).toBe(false); // over the high-water mark: not taken until the stream drains
    release?.();
    await send;
    expect(sent).toBe(true);
    output.destroy();
    await expect(transport.send({ jsonrpc: '2.0', method: 'notifications/x' })).rejects.toThrow(/closed/);
    let closes = 0;
    transport.onclose = () => {
      closes++;
    };
    await transport.close();
    await transport.close();
    expect(closes).toBe(1);
    await expect(transport.start()).rejects.toThrow(/already started/);
  });
});

describe('read_inbox against an inbox a peer flooded', () => {
  // A stand-in daemon with the real one's contract: `inbox` keeps the newest `limit` after `since`, in receive
  // order, as one reply line; `follow` streams every message after `since` as a progress line each, then waits.
  // A reply line over REPLY_CAP fails as the IPC client's 64 MiB line bound does (scaled down here).
  const REPLY_CAP = 1024 * 1024;
  const messages = Array.from({ length: 300 }, (_, i) => ({
    id: `m${i}`,
    from: ONION,
    text: `${i} ${'x'.repeat(8_000)}`,
    timestamp: 1_000 * i,
    verified: true,
    cursor: `c${String(i).padStart(6, '0')}`,
  }));
  const newerThan = (since: unknown) =>
    messages.filter((m) => since === undefined || m.cursor > String(since));
  const ipc: string[] = [];
  const floodedLink: AgentLink = {
    ...link,
    async call<T>(
      method: string,
      params: Record<string, unknown>,
      options: {
        signal?: AbortSignal;
        timeoutMs?: number;
        onProgress?: (e: Record<string, unknown>) => void;
      } = {},
    ): Promise<T> {
      ipc.push(method);
      if (method === 'inbox') {
        const all = newerThan(params.since);
        const out = typeof params.limit === 'number' ? all.slice(-params.limit) : all;
        if (JSON.stringify({ result: out }).length > REPLY_CAP) {
          throw new MmogitError('ERR_TOO_LARGE', 'daemon reply too large');
        }
        return out as T;
      }
      if (method === 'follow') {
        const { signal } = options;
        for (const m of newerThan(params.since)) {
          if (signal?.aborted) throw signal.reason;
          options.onProgress?.({ message: m });
          await Promise.resolve();
        }
        if (signal?.aborted) throw signal.reason;
        return new Promise<T>((_, reject) => {
          const t = setTimeout(
            () => reject(new MmogitError('ERR_TIMEOUT', 'daemon follow timed out')),
            options.timeoutMs ?? 30_000,
          );
          signal?.addEventListener('abort', () => {
            clearTimeout(t);
            reject(signal.reason);
          });
        });
      }
      return {} as T;
    },
  };
  let flooded: Client;

  beforeAll(async () => {
    flooded = await hostFor(floodedLink);
  });

  afterAll(async () => {
    await flooded?.close();
  });

  const read = async (args: Record<string, unknown>) => {
    const r = await flooded.callTool({ name: 'read_inbox', arguments: args });
    expect(r.isError, JSON.stringify(r).slice(0, 300)).toBeFalsy();
    return (r as unknown as { structuredContent: { messages: { id: string }[]; next_cursor: string | null } })
      .structuredContent;
  };

  it('walks a backlog larger than one daemon reply, page by page, none lost or doubled (was ERR_TOO_LARGE)', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await read({ limit: 50, ...(cursor ? { cursor } : {}) });
      if (page.messages.length === 0) {
        expect(page.next_cursor).toBe(cursor);
        break;
      }
      expect(page.messages.length).toBe(50);
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.next_cursor ?? undefined;
    }
    expect(seen).toEqual(messages.map((m) => m.id));
  });

  it('a since filter skips older messages and still moves the cursor past them', async () => {
    const page = await read({ limit: 500, since: new Date(290_000).toISOString() });
    expect(page.messages.map((m) => m.id)).toEqual(messages.slice(290).map((m) => m.id));
    expect(page.next_cursor).toBe(messages[299]?.cursor);
    const empty = await read({ cursor: messages[299]?.cursor });
    expect(empty).toEqual({ messages: [], next_cursor: messages[299]?.cursor });
  });
});

describe('tool calls in flight', () => {
  it(`runs at most ${MAX_TOOL_CALLS_IN_FLIGHT} at once (each holds a daemon connection); more are ERR_RATE_LIMITED at once`, async () => {
    const release: (() => void)[] = [];
    let started = 0;
    const slowLink: AgentLink = {
      ...link,
      call<T>(): Promise<T> {
        started++;
        return new Promise<T>((resolve) => release.push(() => resolve({ ok: true } as T)));
      },
    };
    const host = await hostFor(slowLink);
    try {
      const calls = Array.from({ length: MAX_TOOL_CALLS_IN_FLIGHT + 4 }, () =>
        host.callTool({ name: 'ping_peer', arguments: { peer: ONION } }),
      );
      const until = Date.now() + 5_000;
      while (started < MAX_TOOL_CALLS_IN_FLIGHT && Date.now() < until)
        await new Promise((r) => setTimeout(r, 10));
      const refused = await Promise.all(calls.slice(MAX_TOOL_CALLS_IN_FLIGHT));
      for (const r of refused) expect(errorOf(r).code).toBe('ERR_RATE_LIMITED');
      expect(started).toBe(MAX_TOOL_CALLS_IN_FLIGHT);
      for (const r of release.splice(0)) r();
      for (const r of await Promise.all(calls.slice(0, MAX_TOOL_CALLS_IN_FLIGHT)))
        expect(r.isError).toBeFalsy();
      // The slots are free again.
      const again = host.callTool({ name: 'ping_peer', arguments: { peer: ONION } });
      const by = Date.now() + 5_000;
      while (release.length === 0 && Date.now() < by) await new Promise((r) => setTimeout(r, 10));
      for (const r of release.splice(0)) r();
      expect((await again).isError).toBeFalsy();
    } finally {
      await host.close();
    }
  });
});
