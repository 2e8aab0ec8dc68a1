// The A2A server against a hostile caller, over plain HTTP on 127.0.0.1 (what tor forwards the onion's port 80
// to in attach mode): a client that never reads its answers, bodies nested past the stack, ListTasks (which
// showed every caller everyone's tasks), requests that make the SDK log, a journal that cannot be written, a
// program whose listener throws. Each ends in a JSON-RPC error, a typed failed task or a cut connection; nothing leaks.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, truncate } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { A2aTask } from '../../src/a2a/executor.js';
import { A2aJournal, MAX_JOURNAL_BYTES } from '../../src/a2a/journal.js';
import { sdkLogLine } from '../../src/a2a/sdk-console.js';
import { A2A_FILES, type AgentA2a, startAgentA2a } from '../../src/a2a/serve.js';
import { MAX_REQUEST_DEPTH } from '../../src/a2a/server.js';
import { BoundedTaskStore, MAX_PAGE_BYTES } from '../../src/a2a/task-store.js';
import { AgentKey } from '../../src/identity/keys.js';
import { type HttpReply, httpText } from '../helpers/http.js';

// Spies first: the server routes the SDK's console calls once per process and keeps what it found as the
// pass-through, so these see every call made outside a request.
const consoleCalls: string[] = [];
for (const level of ['error', 'warn', 'info', 'log'] as const) {
  vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
    consoleCalls.push(args.map(String).join(' '));
  });
}

const key = AgentKey.random();
let dir: string;
let a2a: AgentA2a;
let port: number;
let listener: ((t: A2aTask) => void) | null = null;

function post(body: string, headers: Record<string, string> = {}, to = port): Promise<HttpReply> {
  return httpText(
    {
      host: '127.0.0.1',
      port: to,
      method: 'POST',
      path: '/a2a/jsonrpc',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers },
      agent: false,
    },
    body,
  );
}

const rpc = (method: string, params: unknown, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method, params });
const sendBody = (parts: unknown[], extra: Record<string, unknown> = {}) =>
  rpc('SendMessage', { message: { messageId: randomUUID(), role: 'ROLE_USER', parts, ...extra } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-a2a-hostile-'));
  a2a = await startAgentA2a({
    key,
    configDir: dir,
    loopbackTcp: true,
    services: () => [],
    deliver: (t) => {
      if (!listener) return false;
      listener(t);
      return true;
    },
    limits: {
      answerWaitMs: 300,
      requestTimeoutMs: 1_000,
      headersTimeoutMs: 1_000,
      perConnectionPerSecond: 1_000,
    },
  });
  port = Number(a2a.port.target.split(':')[1]);
});

afterAll(async () => {
  await a2a?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the A2A server against a hostile caller', () => {
  it('refuses JSON nested past the limit with a typed error, before the SDK, and records nothing', async () => {
    const before = (await a2a.inbound()).length;
    // 20,000 levels fit in 64 KiB; they overflowed the SDK's recursive converters (a bare -32603 before).
    // (Written as text: JSON.stringify itself overflows on such a value.)
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    for (const body of [
      sendBody([{ data: 0 }]).replace('"data":0', `"data":${deep}`),
      sendBody([{ text: 'x' }], { metadata: { k: 0 } }).replace('"k":0', `"k":${deep}`),
      deep,
    ]) {
      const r = await post(body);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error).toEqual({
        code: -32600,
        message: `request JSON nested deeper than ${MAX_REQUEST_DEPTH} levels`,
        data: { code: 'ERR_TOO_LARGE' },
      });
    }
    expect((await a2a.inbound()).length).toBe(before);
    // Data nested well within the limit is an ordinary message.
    const nested = JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`);
    const ok = JSON.parse((await post(sendBody([{ data: nested }]))).body);
    expect(ok.result.task.status.state).toBe('TASK_STATE_WORKING');
    expect((await a2a.inbound()).at(-1)?.data).toEqual([nested]);
  });

  it('refuses ListTasks: no caller sees the ids, messages or answers of the tasks of others', async () => {
    listener = (t) => void t.complete({ text: 'the answer for the first caller only' });
    const mine = JSON.parse((await post(sendBody([{ text: 'a private question' }]))).body).result.task;
    listener = null;
    for (const params of [{}, { pageSize: 100, includeArtifacts: true }, { contextId: mine.contextId }]) {
      const r = await post(rpc('ListTasks', params, 9));
      expect(r.body).not.toContain(mine.id);
      expect(r.body).not.toContain('private question');
      expect(JSON.parse(r.body)).toEqual({
        jsonrpc: '2.0',
        id: 9,
        error: {
          code: -32004,
          message: expect.stringContaining('not authenticated'),
          data: { code: 'ERR_PEER_UNSUPPORTED' },
        },
      });
    }
    // The task is still there for whoever holds its id.
    const got = JSON.parse((await post(rpc('GetTask', { id: mine.id }))).body).result;
    expect(got.artifacts[0].parts[0].text).toBe('the answer for the first caller only');
  });

  it('the task store pages in bytes and leaves artifacts out unless asked (A2A v1.0 includeArtifacts)', async () => {
    const store = new BoundedTaskStore(100);
    const text = 'x'.repeat(60_000);
    for (let i = 0; i < 40; i++) {
      await store.save({
        id: `t${i}`,
        contextId: 'c',
        status: undefined,
        artifacts: [
          { artifactId: 'a', name: '', description: '', parts: [], metadata: undefined, extensions: [] },
        ],
        history: [
          {
            messageId: `m${i}`,
            contextId: 'c',
            taskId: `t${i}`,
            role: 1,
            parts: [
              { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: '' },
            ],
            metadata: undefined,
            extensions: [],
            referenceTaskIds: [],
          },
        ],
        metadata: undefined,
      } as unknown as Parameters<BoundedTaskStore['save']>[0]);
    }
    const ids = new Set<string>();
    let token = '';
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.list({ pageSize: 100, pageToken: token } as never);
      expect(JSON.stringify(page.tasks).length).toBeLessThan(MAX_PAGE_BYTES + 70_000);
      expect(page.tasks.every((t) => t.artifacts.length === 0)).toBe(true);
      for (const t of page.tasks) {
        expect(ids.has(t.id)).toBe(false);
        ids.add(t.id);
      }
      token = page.nextPageToken;
      if (!token) break;
    }
    expect(ids.size).toBe(40);
    const withArtifacts = await store.list({ pageSize: 2, includeArtifacts: true } as never);
    expect(withArtifacts.tasks.every((t) => t.artifacts.length === 1)).toBe(true);
  });

  it('cuts a connection whose client never reads its answer, at the exchange deadline', async () => {
    // A program's answer can be large (here 8 MB, twice in the reply: artifact and status message), far more
    // than the socket buffers take. Before, a client that sent the request and never read kept the
    // connection, one of maxConnections, and the whole reply buffered, for as long as it liked.
    listener = (t) => void t.complete({ text: 'y'.repeat(8_000_000) });
    const body = sendBody([{ text: 'answer at length' }]);
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.pause();
    s.write(
      `POST /a2a/jsonrpc HTTP/1.1\r\nHost: ${key.onion}\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // exchange deadline = requestTimeoutMs + answerWaitMs = 1.3 s
    await new Promise((r) => setTimeout(r, 3_000));
    listener = null;
    let received = 0;
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    const closed = new Promise<boolean>((resolve) => {
      s.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 4_000).unref();
    });
    s.resume();
    expect(await closed).toBe(true);
    s.destroy();
    expect(received).toBeLessThan(16_000_000);
    // and the server still serves
    expect(JSON.parse((await post(rpc('GetTask', { id: 'nope' }))).body).error.code).toBe(-32001);
  });

  it('keeps caller-chosen text out of the process console (the daemon log): the SDK logs to our debug log', async () => {
    const marker = `forged\n${new Date().toISOString()} ready \u001b[2J`;
    consoleCalls.length = 0;
    await post(sendBody([{ text: 'a' }]), { 'a2a-version': marker.replace(/[^ -~]/g, '_') });
    await post(
      rpc('SendStreamingMessage', { message: { messageId: 'm', role: 'ROLE_USER', parts: [] } }, marker),
    );
    await post(rpc('SubscribeToTask', { id: marker }, marker));
    await post(sendBody([{ text: 'a' }], { referenceTaskIds: Array.from({ length: 50 }, () => marker) }));
    expect(consoleCalls).toEqual([]);
    // What reaches the debug log is one line, escaped and short.
    const line = sdkLogLine([`Reference task ${marker} not found.`, new Error(`boom ${marker}`)]);
    expect(line).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
    expect(line).toContain('\\u{1b}[2J');
    expect(line).not.toContain('    at ');
    expect(sdkLogLine(['x'.repeat(10_000)]).length).toBeLessThanOrEqual(301);
  });

  it("a program's listener that throws leaves the task working and kept; its error stays local", async () => {
    listener = () => {
      throw new Error(`listener bug in ${dir}`);
    };
    const r = await post(sendBody([{ text: 'kept anyway' }]));
    listener = null;
    expect(r.body).not.toContain(dir);
    expect(JSON.parse(r.body).result.task.status.state).toBe('TASK_STATE_WORKING');
    expect((await a2a.inbound()).at(-1)?.text).toBe('kept anyway');
  });

  it('a journal that cannot be written fails the task with a code, never the file system error (a path)', async () => {
    const other = await mkdtemp(join(tmpdir(), 'mmogit-a2a-nojournal-'));
    await mkdir(join(other, A2A_FILES.journal)); // open(…, 'a') fails: EISDIR, naming the path
    const broken = await startAgentA2a({
      key,
      configDir: other,
      loopbackTcp: true,
      services: () => [],
      deliver: () => false,
    });
    try {
      const r = await post(sendBody([{ text: 'lost?' }]), {}, Number(broken.port.target.split(':')[1]));
      expect(r.body).not.toContain(other);
      expect(r.body).not.toMatch(/EISDIR|\/tmp\//);
      const task = JSON.parse(r.body).result.task;
      expect(task.status.state).toBe('TASK_STATE_FAILED');
      expect(task.metadata['mmogit/error']).toBe('ERR_INTERNAL');
      expect(task.status.message.parts[0].text).toMatch(/not accepted \[ERR_INTERNAL\]$/);
    } finally {
      await broken.close();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('the journal cap counts bytes, not UTF-16 units', async () => {
    const path = join(dir, 'cap.jsonl');
    await (await import('node:fs/promises')).writeFile(path, '');
    await truncate(path, MAX_JOURNAL_BYTES - 400); // sparse: no 64 MiB written
    const journal = new A2aJournal(path);
    const m = {
      via: 'a2a' as const,
      taskId: 't',
      contextId: 'c',
      messageId: 'm',
      text: '€'.repeat(100), // 100 units, 300 bytes: the line is under 400 units but over 400 bytes
      data: [],
      receivedAt: new Date(0).toISOString(),
      from: null,
      verified: false,
    };
    await expect(journal.append(m)).rejects.toMatchObject({ code: 'ERR_TOO_LARGE' });
  });

  it('holds at most maxConnections at once, drops idle ones at the header deadline, then serves again', async () => {
    const started = Date.now();
    const closedAt: number[] = [];
    const sockets = Array.from({ length: 100 }, () => {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.on('close', () => closedAt.push(Date.now() - started));
      return s;
    });
    await new Promise((r) => setTimeout(r, 500));
    // Past the 64 held (DEFAULT_A2A_LIMITS.maxConnections), each new connection is closed on arrival.
    expect(closedAt.length).toBe(36);
    // The 64 idle ones go at the header deadline (1 s here).
    const until = Date.now() + 5_000;
    while (closedAt.length < 100 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(closedAt.length).toBe(100);
    for (const s of sockets) s.destroy();
    expect(JSON.parse((await post(rpc('GetTask', { id: 'nope' }))).body).error.code).toBe(-32001);
  });

  it('closes a connection whose body drips in slowly, at the request deadline', async () => {
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () =>
        s.write(
          `POST /a2a/jsonrpc HTTP/1.1\r\nHost: ${key.onion}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        ),
      );
      const drip = setInterval(() => s.write('a'), 100);
      s.on('error', () => {});
      s.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - started);
      });
      setTimeout(() => {
        clearInterval(drip);
        s.destroy();
        reject(new Error('still open after 6 s'));
      }, 6_000).unref();
    });
    expect(closedAfter).toBeLessThan(4_000);
  });
});
