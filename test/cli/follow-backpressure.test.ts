// `mmogit inbox --follow --json | slow-reader` and `mmogit daemon log --follow --json | slow-reader`: the real
// binary with a stdout pipe that the test reads only after a pause. While the pipe is full the CLI must stop
// pulling (from the daemon's `follow` stream, served here by the daemon's own handler over a real socket, or
// from the log file), so its memory holds what a pipe holds, not the backlog; when the reader reads again
// everything arrives once, in order; a reader that goes away ends it quietly (exit 0, nothing on stderr).
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { socketPath } from '../../src/agent/daemon.js';
import { messagingHandlers } from '../../src/agent/daemon-messaging.js';
import { type IpcServer, startIpcServer } from '../../src/agent/ipc.js';
import { followMessages } from '../../src/agent/messaging-follow.js';
import type { AgentRuntime } from '../../src/agent/runtime-types.js';
import { fakeMessage, fakeSource } from '../agent/follow-helpers.js';
import { MMOGIT_BIN } from '../helpers/cli.js';

/** A backlog of ~25 MiB of NDJSON: hundreds of times what the pipes between the daemon and the test hold. */
const TOTAL = 3_000;
const TEXT = 'x'.repeat(4096);

type Child = ChildProcessByStdio<null, Readable, Readable>;

let home: string;
let server: IpcServer;
/** Messages the daemon's follow handler has taken from the store for a client. */
let pulled = 0;
const store = fakeSource(Array.from({ length: TOTAL }, (_, i) => fakeMessage(i + 1, TEXT)));

/** A stand-in daemon on `home`'s socket: the daemon's own `follow` handler over `store`, and `ping`. */
function serve(): Promise<IpcServer> {
  const runtime: Partial<AgentRuntime> = {
    async *messages(options = {}) {
      for await (const m of followMessages(store.source, options)) {
        pulled++;
        yield m;
      }
    },
  };
  const agent = { running: true } as unknown as Agent;
  const { follow } = messagingHandlers(agent, () => runtime as AgentRuntime);
  if (!follow) throw new Error('the daemon has no follow handler');
  return startIpcServer(socketPath(home), { ping: async () => ({ pid: process.pid }), follow });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'mmogit-follow-bp-'));
  server = await serve();
});
afterAll(async () => {
  await server?.close();
  await rm(home, { recursive: true, force: true });
});

/** `mmogit …args` with a stdout pipe nobody reads yet (its stream is not flowing until the test reads it). */
function start(args: string[]): { child: Child; stderr: () => string } {
  const child = spawn(process.execPath, [MMOGIT_BIN, ...args, '--config-dir', home], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return { child, stderr: () => err };
}

function exited(child: Child): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve([child.exitCode, child.signalCode]);
  }
  return new Promise((r) => child.once('exit', (c, s) => r([c, s])));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `value()` has not changed for `quietMs` (at most `maxMs`); returns it. */
async function settled(value: () => number, quietMs: number, maxMs: number): Promise<number> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < end) {
    await sleep(100);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

/** Reads `child.stdout` as NDJSON until `done(lines)`, then stops reading it again; rejects after `ms`. */
function readLines(child: Child, done: (lines: unknown[]) => boolean, ms: number): Promise<unknown[]> {
  const lines: unknown[] = [];
  let rest = '';
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.pause();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`only ${lines.length} lines in ${ms} ms`));
    }, ms);
    const onData = (d: Buffer) => {
      const parts = (rest + d.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) lines.push(JSON.parse(p));
      if (done(lines)) {
        stop();
        resolve(lines);
      }
    };
    child.stdout.on('data', onData);
    child.stdout.resume();
  });
}

/** Bytes the process has read with read(2) and its kind (files, sockets, pipes): Linux's /proc/PID/io. */
async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^rchar: (\d+)$/m.exec(io)?.[1]);
}

describe('following into a pipe', () => {
  it('inbox --follow --json stops pulling from the daemon while stdout is full, then sends every message once', async () => {
    pulled = 0;
    const { child, stderr } = start(['inbox', '--follow', '--json']);
    try {
      // Nobody reads stdout: the CLI fills the pipe and must then leave the daemon's stream alone.
      const stalled = await settled(() => pulled, 1_500, 30_000);
      expect(stalled, 'the CLI took the backlog while its stdout was full').toBeLessThan(TOTAL / 10);
      expect(stalled).toBeGreaterThan(0);
      await sleep(1_000);
      expect(pulled).toBe(stalled);
      // Reading again: the rest arrives, each message once and in order, though the CLI hung up in between.
      const lines = (await readLines(child, (l) => l.length >= TOTAL, 60_000)) as { id: string }[];
      expect(lines.map((m) => m.id)).toEqual(Array.from({ length: TOTAL }, (_, i) => fakeMessage(i + 1).id));
      expect(stderr()).toBe('');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  }, 120_000);

  it('inbox --follow --json into a reader that goes away: exit 0, nothing on stderr', async () => {
    const { child, stderr } = start(['inbox', '--follow', '--json']);
    await settled(() => pulled, 1_000, 30_000);
    child.stdout.once('data', () => child.stdout.destroy());
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await exited(child);
    clearTimeout(killer);
    expect({ code, signal, stderr: stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
  }, 60_000);

  it('inbox --follow --json over a daemon restart: a note on stderr, then on from its cursor, nothing repeated', async () => {
    const since = fakeMessage(TOTAL - 2).cursor as string;
    const { child, stderr } = start(['inbox', '--follow', '--json', '--since', since]);
    try {
      const before = (await readLines(child, (l) => l.length >= 2, 30_000)) as { id: string }[];
      expect(before.map((m) => m.id)).toEqual([fakeMessage(TOTAL - 1).id, fakeMessage(TOTAL).id]);
      await server.close();
      await sleep(500);
      store.store(fakeMessage(TOTAL + 1, TEXT));
      server = await serve();
      const after = (await readLines(child, (l) => l.length >= 1, 30_000)) as { id: string }[];
      expect(after.map((m) => m.id)).toEqual([fakeMessage(TOTAL + 1).id]);
      expect(stderr()).toContain('the daemon went away; resuming from');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  }, 60_000);

  it.skipIf(process.platform !== 'linux')(
    'daemon log --follow --json reads no more of the log while stdout is full',
    async () => {
      const log = join(home, 'daemon.log');
      await writeFile(log, 'first line\n');
      const { child, stderr } = start(['daemon', 'log', '--follow', '--json', '--lines', '1']);
      try {
        await readLines(child, (l) => l.length >= 1, 30_000);
        // The CLI is started and idle: what it reads from now on is the log (and what the pipe gives back).
        await sleep(500);
        const before = await bytesRead(child.pid as number);
        const line = `${'y'.repeat(1_000)}\n`;
        const LINES = 20_000; // ~20 MiB appended while nobody reads stdout
        for (let i = 0; i < LINES; i += 1_000) await appendFile(log, line.repeat(1_000));
        await sleep(2_000);
        const read = (await bytesRead(child.pid as number)) - before;
        expect(read, 'the CLI read the log while its stdout was full').toBeLessThan(4 * 1024 * 1024);
        // Reading again: every appended line arrives, whole.
        const lines = (await readLines(child, (l) => l.length >= LINES, 60_000)) as { line: string }[];
        expect(lines.length).toBe(LINES);
        expect(lines.every((l) => l.line === line.slice(0, -1))).toBe(true);
        expect(stderr()).toBe('');
      } finally {
        child.kill('SIGKILL');
        await exited(child);
      }
    },
    120_000,
  );
});
