// Loopback TCP stand-in for the agent node while the libp2p node is not wired in: real sockets on
// 127.0.0.1, a one-line protocol header, and a shared directory of onion → port.
import { open as fsOpen, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { OpenFile } from '../../src/agent/append-log.js';
import {
  type MessagingNode,
  Messenger,
  type MessengerDeps,
  type ReceivedMessage,
} from '../../src/agent/messaging.js';
import { JsonlMessageStore } from '../../src/agent/messaging-store.js';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { type ByteChannel, channelFromDuplex } from '../../src/transport/byte-channel.js';

export type Directory = Map<string, number>;

type Handler = (ch: ByteChannel, info: { transport: 'direct' }) => void;
/** Each listening port's protocol handlers: a dial for a protocol the peer does not serve is refused, as
 * multistream-select's `na` answer makes libp2p refuse it. */
const served = new Map<number, Map<string, Handler>>();

export interface LoopbackNode extends MessagingNode {
  readonly port: number;
  readonly sockets: Set<Socket>;
  stop(): Promise<void>;
}

/** Listens on 127.0.0.1 and registers `onion` in `dir`; dials look the peer up in `dir`. */
export async function loopbackNode(onion: string, dir: Directory, port = 0): Promise<LoopbackNode> {
  const handlers = new Map<string, Handler>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      const rest = Buffer.from(head.slice(nl + 1), 'latin1');
      const handler = handlers.get(head.slice(0, nl));
      if (!handler) return void socket.destroy();
      socket.pause();
      const ch = channelFromDuplex(socket);
      if (rest.length) socket.unshift(rest);
      socket.resume();
      handler(ch, { transport: 'direct' });
    };
    socket.on('data', onData);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => res());
  });
  const actual = (server.address() as { port: number }).port;
  dir.set(onion, actual);
  served.set(actual, handlers);
  return {
    port: actual,
    sockets,
    async dial(peer, protocol, options = {}) {
      const p = dir.get(peer);
      if (p === undefined)
        throw Object.assign(new Error(`unknown peer ${peer}`), { code: 'ERR_PEER_UNREACHABLE' });
      if (!served.get(p)?.has(protocol)) {
        throw new MmogitError('ERR_PEER_UNSUPPORTED', `${peer} does not serve ${protocol}`);
      }
      const socket = await new Promise<Socket>((res, rej) => {
        const s = createConnection({ host: '127.0.0.1', port: p });
        const onAbort = () => s.destroy(new Error('aborted'));
        options.signal?.addEventListener('abort', onAbort, { once: true });
        s.once('connect', () => {
          options.signal?.removeEventListener('abort', onAbort);
          res(s);
        });
        s.once('error', (e) => {
          options.signal?.removeEventListener('abort', onAbort);
          rej(e);
        });
      });
      socket.on('error', () => {});
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.write(`${protocol}\n`);
      return { channel: channelFromDuplex(socket), transport: 'direct' };
    },
    handle(protocol, handler) {
      handlers.set(protocol, handler);
    },
    unhandle(protocol) {
      handlers.delete(protocol);
    },
    async stop() {
      dir.delete(onion);
      served.delete(actual);
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

export interface TestAgent {
  key: AgentKey;
  home: string;
  node: LoopbackNode;
  messenger: Messenger;
  store: JsonlMessageStore;
  stop(): Promise<void>;
}

/** A messenger on a loopback node with its config in `home` (a fresh temp dir unless given). */
export async function startAgent(
  dir: Directory,
  opts: { key?: AgentKey; home?: string; port?: number; deps?: Partial<MessengerDeps> } = {},
): Promise<TestAgent> {
  const key = opts.key ?? AgentKey.random();
  const home = opts.home ?? (await mkdtemp(join(tmpdir(), 'mmogit-msg-')));
  const node = await loopbackNode(key.onion, dir, opts.port);
  const store = new JsonlMessageStore(join(home, 'messages.jsonl'));
  const messenger = new Messenger({
    node,
    key,
    store,
    outboxDir: join(home, 'outbox'),
    retry: { initialDelayMs: 50, maxDelayMs: 400, attemptTimeoutMs: 3_000 },
    ...opts.deps,
  });
  await messenger.start();
  return {
    key,
    home,
    node,
    messenger,
    store,
    async stop() {
      await messenger.stop();
      await node.stop();
    },
  };
}

export async function removeHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}

/** Polls `check` every 20 ms until it returns true, or fails after `ms`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Per-test agents: `agent(dir, opts)` starts one that is stopped after the test, its home removed too unless
 * `keepGivenHome` and the home was given; `cleanup` takes further steps (run last-in first-out after each test).
 * Call at the top level of a test file (it registers an `afterEach`).
 */
export function agentsPerTest(options: { keepGivenHome?: boolean } = {}): {
  cleanup: (() => Promise<void>)[];
  agent(dir: Directory, opts?: Parameters<typeof startAgent>[1]): Promise<TestAgent>;
} {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()?.();
  });
  const agent = async (dir: Directory, opts: Parameters<typeof startAgent>[1] = {}): Promise<TestAgent> => {
    const a = await startAgent(dir, opts);
    cleanup.push(async () => {
      await a.stop();
      if (!(options.keepGivenHome && opts.home)) await removeHome(a.home);
    });
    return a;
  };
  return { cleanup, agent };
}

/** Every message `a` receives from now on, in order. */
export function collect(a: TestAgent): ReceivedMessage[] {
  const got: ReceivedMessage[] = [];
  a.messenger.on('message', (m: ReceivedMessage) => got.push(m));
  return got;
}

/** One write of a {@link heldWrites} file: held until `release()`, then done on the real file. */
export interface HeldWrite {
  /** The bytes written, as text. */
  text: string;
  /** True once the real write returned (the file is opened with O_DSYNC: the bytes are durable then). */
  returned: boolean;
  release(): void;
}

/**
 * An `open` for an {@link OpenFile} seam (AppendLog, JsonlMessageStore) whose file's writes each wait until the
 * test releases them: the file system boundary made slow on demand, to see which records share a write and
 * what happens while one is on the disk. The real disk is too quick to hold a write open for a test.
 */
export function heldWrites(): { open: OpenFile; writes: HeldWrite[] } {
  const writes: HeldWrite[] = [];
  const open: OpenFile = async (path, flags, mode) => {
    const fh = await fsOpen(path, flags, mode);
    const real = fh.write.bind(fh) as (
      b: Uint8Array,
      off: number,
      len: number,
    ) => Promise<{ bytesWritten: number }>;
    Object.assign(fh, {
      write: async (buf: Uint8Array, off: number, len: number) => {
        let release!: () => void;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        const w: HeldWrite = {
          text: Buffer.from(buf.subarray(off, off + len)).toString('utf8'),
          returned: false,
          release,
        };
        writes.push(w);
        await gate;
        const r = await real(buf, off, len);
        w.returned = true;
        return r;
      },
    });
    return fh;
  };
  return { open, writes };
}

/** The records of a held write of a JSON-lines store (one non-empty line each). */
export function recordsIn(w: HeldWrite): number {
  return w.text.split('\n').filter((l) => l.trim() !== '').length;
}
