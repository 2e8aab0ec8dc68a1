import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { serveAgent, socketPath } from '../../src/agent/daemon.js';
import { ipcCall } from '../../src/agent/ipc.js';
import type { TransportPolicy } from '../../src/agent/runtime.js';
import { hasCode } from '../../src/errors.js';

// `tor start` right after `tor stop` once failed with ERR_INTERNAL "Cannot read properties of null (reading
// 'onion')" while the daemon came up: the daemon's socket accepted connections while startIpcServer was still
// finishing (a chmod, later a clean-up, after the socket became reachable), before `ready` existed, so a
// `waitReady` in that window answered `{"result":null}`. The window is one file-system call long and cannot be
// made to last with the real parts, so this test double only makes startIpcServer return late — its server is
// real and already listening — and leaves everything else real.
const RETURN_DELAY_MS = 400;
vi.mock('../../src/agent/ipc.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/agent/ipc.js')>();
  return {
    ...real,
    startIpcServer: async (...args: Parameters<typeof real.startIpcServer>) => {
      const server = await real.startIpcServer(...args);
      await new Promise((r) => setTimeout(r, RETURN_DELAY_MS));
      return server;
    },
  };
});

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'mmogit-race-'));
  await (await Agent.init({ configDir: home })).agent.close();
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

/** Calls `waitReady` at the first moment the socket accepts, as `tor start` does (it polls every 50 ms). */
async function firstWaitReady(): Promise<{ value?: unknown; error?: unknown }> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      return { value: await ipcCall(socketPath(home), 'waitReady', {}, { timeoutMs: 60_000 }) };
    } catch (e) {
      if (!hasCode(e, 'ERR_DAEMON_NOT_RUNNING')) return { error: e };
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  throw new Error('the daemon socket never accepted');
}

describe('the daemon answers waitReady from its first accepted connection on', () => {
  it('a waitReady that arrives while the socket is being set up waits for the start (no null state)', async () => {
    // A start that fails at once (bad policy: nothing is spawned) keeps the test fast; the answer must be that
    // failure, never a `null` "ready" state.
    // No wall-clock bound here: a waitReady that hung would end in ERR_TIMEOUT, not in the start's own error,
    // and a bound in seconds fails by chance on a loaded machine (7 s once in CI).
    const serving = serveAgent({ configDir: home, policy: 'bogus' as TransportPolicy });
    const answer = await firstWaitReady();
    expect(answer.value).toBeUndefined();
    expect(hasCode(answer.error, 'ERR_INVALID_ARGUMENT')).toBe(true);
    const served = await serving;
    await expect(served.ready).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await served.stopped; // a failed start ends the daemon by itself
  }, 150_000);
});
