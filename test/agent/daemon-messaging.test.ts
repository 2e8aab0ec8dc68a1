// The daemon's messaging IPC methods (src/agent/daemon-messaging.ts) against a recording stand-in for the
// agent's runtime: what each method lets through to the runtime, and what it refuses before.
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { messagingHandlers } from '../../src/agent/daemon-messaging.js';
import type { IpcContext } from '../../src/agent/ipc.js';
import { MESSAGE_ID_RE } from '../../src/agent/messaging-envelope-v2.js';
import type { AgentRuntime } from '../../src/agent/runtime-types.js';

/** The handlers over a runtime that records every call it gets. */
function handlersFor(runtime: Partial<AgentRuntime>) {
  const agent = { running: true } as unknown as Agent;
  return messagingHandlers(agent, () => runtime as AgentRuntime);
}

const context = (): IpcContext => ({ progress: () => {}, signal: new AbortController().signal });

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
