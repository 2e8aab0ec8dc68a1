// The A2A server's limits, straight on its Unix socket (what tor forwards port 80 to): oversized, malformed
// and slow requests, too many tasks, too many requests on one connection — each a JSON-RPC error or a closed
// connection, and the server keeps serving. Plus the card: signed by the key, skills from the services.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCardForOnion } from '../../src/a2a/card.js';
import { userMessage } from '../../src/a2a/client.js';
import type { A2aTask } from '../../src/a2a/executor.js';
import { PROOF_KEY, signMessageProof } from '../../src/a2a/proof.js';
import { A2A_FILES, type AgentA2a, startAgentA2a } from '../../src/a2a/serve.js';
import { AgentKey } from '../../src/identity/keys.js';
import { type HttpReply, httpText } from '../helpers/http.js';

let dir: string;
let a2a: AgentA2a;
const key = AgentKey.random();
let services: string[] = [];
let listener: ((t: A2aTask) => void) | null = null;
const socketPath = () => join(dir, A2A_FILES.socket);

function call(
  method: string,
  path: string,
  body?: string,
  opts: { agent?: HttpAgent; headers?: Record<string, string> } = {},
): Promise<HttpReply> {
  return httpText(
    {
      socketPath: socketPath(),
      method,
      path,
      headers: {
        host: key.onion,
        'content-type': 'application/json',
        'a2a-version': '1.0',
        ...opts.headers,
      },
      agent: opts.agent ?? false, // one connection per call unless a test shares one
    },
    body,
  );
}

const sendBody = (text: string) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'SendMessage',
    params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] } },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmogit-a2a-srv-'));
  a2a = await startAgentA2a({
    key,
    configDir: dir,
    services: () => services,
    deliver: (t) => {
      if (!listener) return false;
      listener(t);
      return true;
    },
    limits: { maxConcurrentTasks: 1, answerWaitMs: 1_500, headersTimeoutMs: 500, perConnectionPerSecond: 5 },
  });
});

afterAll(async () => {
  await a2a?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the A2A server on its Unix socket', () => {
  it('serves a card signed by the agent key whose skills follow the advertised services', async () => {
    const first = JSON.parse((await call('GET', '/.well-known/agent-card.json')).body);
    expect(first.skills.map((s: { id: string }) => s.id)).toEqual(['messaging']);
    services = ['memory_sync', 'translate'];
    const second = JSON.parse((await call('GET', '/.well-known/agent-card.json')).body);
    expect(second.skills.map((s: { id: string }) => s.id)).toEqual(['memory_sync', 'translate']);
    expect(verifyCardForOnion(second, key.onion).kid).toBe(key.onion);
  });

  it('answers a SendMessage with the program’s answer, and records the message first', async () => {
    listener = (t) => void t.complete({ text: t.message.text.split('').reverse().join('') });
    const r = await call('POST', '/a2a/jsonrpc', sendBody('stressed'));
    listener = null;
    const body = JSON.parse(r.body);
    expect(body.result.task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(body.result.task.artifacts[0].parts[0].text).toBe('desserts');
    expect((await a2a.inbound()).map((m) => m.text)).toContain('stressed');
  });

  it('rejects a message whose sender proof does not verify, without recording it', async () => {
    const impostor = AgentKey.random();
    const signed = signMessageProof(userMessage('I am someone else'), impostor, key.onion);
    const proof = signed.metadata?.[PROOF_KEY] as Record<string, unknown>;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'SendMessage',
      params: {
        message: {
          messageId: signed.messageId,
          role: 'ROLE_USER',
          parts: [{ text: 'I am someone else' }],
          metadata: { [PROOF_KEY]: { ...proof, from: AgentKey.random().onion } },
        },
      },
    });
    const r = JSON.parse((await call('POST', '/a2a/jsonrpc', body)).body);
    expect(r.result.task.status.state).toBe('TASK_STATE_REJECTED');
    expect(r.result.task.metadata['mmogit/error']).toBe('ERR_BAD_SIGNATURE');
    expect((await a2a.inbound()).map((m) => m.text)).not.toContain('I am someone else');
  });

  it('refuses oversized, malformed and unknown requests with JSON-RPC errors', async () => {
    const big = await call('POST', '/a2a/jsonrpc', sendBody('x'.repeat(100 * 1024)));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error).toMatchObject({ code: -32600, data: { code: 'ERR_TOO_LARGE' } });
    const bad = await call('POST', '/a2a/jsonrpc', '{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe(-32700);
    const unknown = await call(
      'POST',
      '/a2a/jsonrpc',
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'Launch', params: {} }),
    );
    expect(JSON.parse(unknown.body).error.code).toBe(-32601);
    const nowhere = await call('GET', '/etc/passwd');
    expect(nowhere.status).toBe(404);
  });

  it('caps tasks in progress: a second SendMessage while one waits is refused, not queued', async () => {
    listener = () => {}; // takes the task, never answers
    const slow = call('POST', '/a2a/jsonrpc', sendBody('first'));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await call('POST', '/a2a/jsonrpc', sendBody('second'));
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.data).toEqual({ code: 'ERR_RATE_LIMITED' });
    const first = JSON.parse((await slow).body);
    expect(first.result.task.status.state).toBe('TASK_STATE_WORKING');
    listener = null;
  });

  it('limits requests per connection', async () => {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push((await call('GET', '/.well-known/agent-card.json', undefined, { agent })).status);
    agent.destroy();
    expect(statuses.slice(0, 5).every((s) => s === 200)).toBe(true);
    expect(statuses).toContain(429);
  });

  it('drops a slowloris connection after the header deadline and keeps serving', async () => {
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const s = createConnection(socketPath(), () =>
        s.write(`GET / HTTP/1.1\r\nHost: ${key.onion}\r\nX-Slow: `),
      );
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - started));
      setTimeout(() => reject(new Error('still open after 5 s')), 5_000).unref();
    });
    expect(closedAfter).toBeLessThan(5_000);
    expect((await call('GET', '/.well-known/agent-card.json')).status).toBe(200);
  });
});
