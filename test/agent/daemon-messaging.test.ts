// The daemon's messaging IPC methods (src/agent/daemon-messaging.ts) against a recording stand-in for the
// agent's runtime: what each method lets through to the runtime, what it refuses before, and `follow` over a
// real IPC socket whose client stops reading.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { messagingHandlers } from '../../src/agent/daemon-messaging.js';
import { type IpcContext, startIpcServer } from '../../src/agent/ipc.js';
import { MESSAGE_ID_RE } from '../../src/agent/messaging-envelope-v2.js';
import { FOLLOW_PAGE, followMessages } from '../../src/agent/messaging-follow.js';
import type { AgentRuntime } from '../../src/agent/runtime-types.js';
import { fakeMessage, fakeSource } from './follow-helpers.js';

/** The handlers over a runtime that records every call it gets. */
function handlersFor(runtime: Partial<AgentRuntime>) {
  const agent = { running: true } as unknown as Agent;
  return messagingHandlers(agent, () => runtime as AgentRuntime);
}

const context = (): IpcContext => ({
  progress: () => true,
  drain: async () => {},
  signal: new AbortController().signal,
});

describe('outbox over IPC', () => {
  it('takes a message id by the envelope’s own rule (MESSAGE_ID_RE) and refuses anything else first', async () => {
    const calls: string[] = [];
    const h = handlersFor({
      retryQueued: async (id) => {
        calls.push(`retry ${id}`);
        return { id, status: 'queued' };
      },
      dropQueued: async (id) => {
        calls.push(`drop ${id}`);
        return { id, to: 'x' };
      },
    });
    const outbox = h.outbox as NonNullable<typeof h.outbox>;
    const good = '0123456789abcdef0123456789abcdef';
    expect(MESSAGE_ID_RE.test(good)).toBe(true);
    await outbox({ action: 'retry', id: good }, context());
    await outbox({ action: 'drop', id: good }, context());
    expect(calls).toEqual([`retry ${good}`, `drop ${good}`]);
    calls.length = 0;
    for (const id of [good.toUpperCase(), good.slice(1), `${good.slice(1)}g`, `../${good.slice(3)}`]) {
      expect(MESSAGE_ID_RE.test(id), id).toBe(false);
      for (const action of ['retry', 'drop']) {
        await expect(outbox({ action, id }, context()), `${action} ${id}`).rejects.toMatchObject({
          code: 'ERR_INVALID_ARGUMENT',
          details: { param: 'id' },
        });
      }
    }
    expect(calls).toEqual([]);
  });
});

describe('inbox and follow over IPC', () => {
  it('inbox takes `first` (the oldest that many after `since`) to the runtime, and refuses it with `limit`', async () => {
    const asked: unknown[] = [];
    const h = handlersFor({
      inbox: async (filter) => {
        asked.push(filter);
        return [];
      },
    });
    const inbox = h.inbox as NonNullable<typeof h.inbox>;
    const since = fakeMessage(3).cursor as string;
    await inbox({ since, first: 50 }, context());
    await inbox({ since, limit: 5 }, context());
    expect(asked).toEqual([
      { since, first: 50 },
      { since, limit: 5 },
    ]);
    for (const p of [{ first: 5, limit: 5 }, { first: 0 }, { first: 1.5 }, { first: '5' }]) {
      await expect(inbox(p, context()), JSON.stringify(p)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
      });
    }
    expect(asked).toHaveLength(2);
  });

  it('follow streams a backlog of many pages at the client’s pace: a client that stops reading stops the reading', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmogit-follow-'));
    const TOTAL = 4 * FOLLOW_PAGE + 17;
    const f = fakeSource(Array.from({ length: TOTAL }, (_, i) => fakeMessage(i + 1, 'x'.repeat(4096))));
    let pulled = 0;
    const runtime: Partial<AgentRuntime> = {
      async *messages(options = {}) {
        for await (const m of followMessages(f.source, options)) {
          pulled++;
          yield m;
        }
      },
    };
    const server = await startIpcServer(join(dir, 'daemon.sock'), handlersFor(runtime));
    const socket = connect(join(dir, 'daemon.sock'));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.write(`${JSON.stringify({ method: 'follow', params: {} })}\n`);
      // Nobody reads: the daemon writes until the socket's buffers are full, then waits.
      await new Promise((r) => setTimeout(r, 500));
      const stalled = pulled;
      await new Promise((r) => setTimeout(r, 300));
      expect(pulled).toBe(stalled);
      expect(pulled).toBeLessThan(TOTAL / 2);
      expect(f.reads.length).toBeLessThanOrEqual(Math.ceil(stalled / FOLLOW_PAGE) + 1);
      // Reading again, every message arrives once, in order, from pages of FOLLOW_PAGE.
      const ids: string[] = [];
      let rest = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${ids.length} of ${TOTAL}`)), 30_000);
        socket.on('data', (d: Buffer) => {
          const lines = (rest + d.toString('utf8')).split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) {
            const msg = JSON.parse(l) as { progress?: { message?: { id: string } } };
            if (msg.progress?.message) ids.push(msg.progress.message.id);
          }
          if (ids.length >= TOTAL) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(ids).toEqual(Array.from({ length: TOTAL }, (_, i) => fakeMessage(i + 1).id));
      expect(f.reads.map((r) => r.got)).toEqual([FOLLOW_PAGE, FOLLOW_PAGE, FOLLOW_PAGE, FOLLOW_PAGE, 17]);
    } finally {
      socket.destroy();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
