// The real daemon (`mmogit tor start` on the private Tor network) against raw, hostile lines on daemon.sock:
// every line gets one typed error, and the same daemon keeps serving the CLI afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketPath } from '../../src/agent/daemon.js';
import { IPC_MAX_LINE_BYTES, ipcCall } from '../../src/agent/ipc.js';
import { runCli } from '../helpers/cli.js';
import { propertyParams } from '../helpers/property.js';
import { testNetwork } from '../helpers/tor.js';

let root: string;
let home: string;
let pid: number;

/**
 * Writes `bytes` raw and collects the daemon's lines until it closes the connection. With `hangUpAfterMs`, a
 * request still running then (a valid discover, sync…) is cut off by closing our side, which aborts it.
 */
function raw(bytes: string | Buffer, hangUpAfterMs?: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath(home));
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      if (hangUpAfterMs === undefined)
        reject(new Error(`daemon did not close within 15 s; got ${JSON.stringify(got)}`));
    }, hangUpAfterMs ?? 15_000);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (d) => {
      got += d;
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got.split('\n').filter((l) => l !== ''));
    });
  });
}

function errorCode(lines: string[]): string {
  expect(lines).toHaveLength(1);
  const msg = JSON.parse(lines[0] as string) as { error?: { code?: string } };
  return msg.error?.code ?? `no error in ${lines[0]}`;
}

async function stillServing(): Promise<void> {
  expect(await ipcCall(socketPath(home), 'ping', {}, { timeoutMs: 5_000 })).toEqual({ pid });
}

beforeAll(async () => {
  const network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-ipc-hostile-'));
  home = join(root, 'a');
  expect((await runCli(['init', '--json', '--config-dir', home])).exitCode).toBe(0);
  const r = await runCli(['tor', 'start', '--network', network, '--json', '--config-dir', home], {
    timeoutMs: 150_000,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  pid = r.json<{ pid: number }>().pid;
}, 180_000);

afterAll(async () => {
  if (home) await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

describe('daemon.sock: no request stops the daemon', () => {
  it('answers malformed requests with typed errors and keeps serving', async () => {
    const cases: [string | Buffer, string][] = [
      ['null\n', 'ERR_DAEMON_IPC'],
      ['[]\n', 'ERR_DAEMON_IPC'],
      ['123\n', 'ERR_DAEMON_IPC'],
      ['"status"\n', 'ERR_DAEMON_IPC'],
      ['{"method":null}\n', 'ERR_DAEMON_IPC'],
      ['{"method":"format-disk"}\n', 'ERR_DAEMON_IPC'],
      ['{"method":"__proto__"}\n', 'ERR_DAEMON_IPC'],
      ['{"method":"send","params":null}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"send","params":[]}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"send","params":{"onion":{},"text":"x"}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"send","params":{"onion":"nope.onion","text":"x"}}\n', 'ERR_INVALID_ONION'],
      ['{"method":"inbox","params":{"since":"yesterday"}}\n', 'ERR_BAD_CURSOR'],
      ['{"method":"inbox","params":{"limit":-1}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"inbox","params":{"limit":"all"}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"discover","params":{"service":"x","timeoutMs":1e308}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"advertise","params":{"services":[{"$ne":1}]}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"sync","params":{"peers":"everyone"}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":"connect","params":{"onion":5}}\n', 'ERR_INVALID_ARGUMENT'],
      ['{"method":\n', 'ERR_DAEMON_IPC'],
      [Buffer.from([0xc3, 0x28, 0x0a]), 'ERR_DAEMON_IPC'],
      [Buffer.alloc(IPC_MAX_LINE_BYTES + 1, 0x7b), 'ERR_TOO_LARGE'],
      // 100,000 levels of nesting (JSON.parse copes; nothing after it may recurse on it)
      [
        `{"method":"send","params":{"onion":"x","body":${'['.repeat(100_000)}${']'.repeat(100_000)}}}\n`,
        'ERR_INVALID_ARGUMENT',
      ],
      [
        `{"method":"discover","params":{"service":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}}\n`,
        'ERR_INVALID_ARGUMENT',
      ],
    ];
    for (const [line, code] of cases) {
      expect(errorCode(await raw(line)), String(line).slice(0, 80)).toBe(code);
      await stillServing();
    }
  }, 120_000);

  it('property: arbitrary JSON values as requests or params never stop it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            method: fc.constantFrom('send', 'inbox', 'connect', 'advertise', 'discover', 'sync', 'ping', 'x'),
            params: fc.jsonValue(),
          }),
          fc.record({
            method: fc.constantFrom('send', 'inbox', 'connect', 'advertise', 'discover', 'sync'),
            params: fc.record(
              {
                onion: fc.jsonValue(),
                text: fc.jsonValue(),
                limit: fc.jsonValue(),
                services: fc.jsonValue(),
                service: fc.jsonValue(),
                peers: fc.jsonValue(),
                timeoutMs: fc.jsonValue(),
                ttlMs: fc.jsonValue(),
              },
              { requiredKeys: [] },
            ),
          }),
        ),
        async (request) => {
          // A request that happens to be valid may start real work (discover, sync): we hang up after 2 s.
          const lines = await raw(`${JSON.stringify(request)}\n`, 2_000);
          for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
          await stillServing();
        },
      ),
      propertyParams('daemon ipc', { numRuns: 40 }),
    );
  }, 240_000);

  it('after all that, the same daemon still works for the CLI', async () => {
    const status = await runCli(['tor', 'status', '--json', '--config-dir', home]);
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.json()).toMatchObject({ running: true, pid, bootstrap: 100 });
    const inbox = await runCli(['inbox', '--json', '--config-dir', home]);
    expect(inbox.exitCode, inbox.stderr).toBe(0);
  }, 60_000);
});
