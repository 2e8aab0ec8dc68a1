// Fuzz targets for requests and streams: IPC request lines, MCP tool arguments, sync frames (every decoder, read
// through the real length-prefixed Wire) and pack data (a real raw-deflated pack, mutated).
import { Duplex } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { parseIpcRequest } from '../../src/agent/ipc.js';
import { optionalIntParam, stringArrayParam, stringParam } from '../../src/agent/ipc-params.js';
import { AgentKey } from '../../src/identity/keys.js';
import { TOOLS } from '../../src/mcp/tools.js';
import { signEntry } from '../../src/memory/entry.js';
import {
  decodeBits,
  decodeError,
  decodeHave,
  decodeHello,
  decodePackEnd,
  decodePackInfo,
  decodeRef,
  decodeResult,
  decodeWant,
  T,
  Wire,
} from '../../src/memory/sync/frames.js';
import { checkAnnounced, PackUnpacker } from '../../src/memory/sync/unpack.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import {
  type FuzzTarget,
  hostileBytes,
  hostileJson,
  must,
  target,
  utf8,
  verdict,
  verdictAsync,
} from './fuzz-kit.js';

const key = AgentKey.fromSeed(new Uint8Array(32).fill(9));

// ── IPC requests (one JSON line each, from any local process that can open the socket) ──────────────

const IPC_SEEDS = [
  '{"method":"send","params":{"to":"alice","text":"hi","timeoutMs":5000}}',
  '{"method":"inbox","params":{"limit":10,"peers":["a","b"]}}',
  '{"method":"status"}',
].map(utf8);

const ipcRequests = target({
  name: 'IPC requests',
  input: hostileBytes(IPC_SEEDS, 400),
  check(line) {
    const r = verdict(() => parseIpcRequest(line));
    if (!r.accepted) {
      must(['ERR_DAEMON_IPC', 'ERR_INVALID_ARGUMENT'].includes(r.error.code), `IPC refused ${r.error.code}`);
      return;
    }
    // The parameter readers every method uses: typed refusals only.
    const reads: (() => unknown)[] = [
      () => stringParam(r.value.params, 'to'),
      () => stringParam(r.value.params, 'text'),
      () => optionalIntParam(r.value.params, 'limit', { min: 1, max: 1000 }),
      () => optionalIntParam(r.value.params, 'timeoutMs', { min: 1, max: 600_000 }),
      () => stringArrayParam(r.value.params, 'peers'),
    ];
    for (const read of reads) {
      const p = verdict(read);
      if (!p.accepted) must(p.error.code === 'ERR_INVALID_ARGUMENT', `IPC param refused ${p.error.code}`);
    }
  },
});

// ── MCP tool arguments (the SDK hands each tool's `arguments` object to its zod schema) ─────────────

const mcpArguments = target({
  name: 'MCP tool arguments',
  input: fc.tuple(
    fc.nat(TOOLS.length - 1),
    hostileJson([
      { to: 'alice', text: 'hi', timeoutSeconds: 5 },
      { query: 'x', limit: 5, kind: 'memory' },
      { peer: 'a'.repeat(56), alias: 'bob' },
    ]),
  ),
  check([i, args]) {
    const tool = TOOLS[i] as (typeof TOOLS)[number];
    const r = verdict(() => tool.input.safeParse(args));
    must(r.accepted, `the ${tool.name} schema threw`);
  },
});

// ── sync frames: `len u32 ‖ type u8 ‖ payload`, read by the real Wire, each payload by its decoder ──

function frame(type: number, payload: Uint8Array | object): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : utf8(JSON.stringify(payload));
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out[4] = type;
  out.set(body, 5);
  return new Uint8Array(out);
}

const SYNC_SEEDS = [
  frame(T.hello, { proto: 'mmogit-sync/2', onion: key.onion, nonce: 'ab'.repeat(16) }),
  frame(T.ref, { head: 'a'.repeat(40), sig: 'b'.repeat(128) }),
  frame(T.want, { need: true }),
  frame(T.have, ['a'.repeat(40), 'c'.repeat(40)]),
  frame(T.bits, Uint8Array.of(0b101)),
  frame(T.packInfo, { objects: 2, rawBytes: 300 }),
  frame(T.packEnd, {}),
  frame(T.result, { head: null }),
  frame(T.error, { code: 'ERR_SYNC', message: 'no' }),
];

function feeding(bytes: Uint8Array) {
  const stream = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
  stream.push(Buffer.from(bytes));
  stream.push(null);
  return channelFromDuplex(stream);
}

const DECODERS: Record<number, (b: Uint8Array) => unknown> = {
  [T.hello]: decodeHello,
  [T.ref]: decodeRef,
  [T.want]: decodeWant,
  [T.have]: decodeHave,
  [T.bits]: (b) => decodeBits(b, 3),
  [T.packInfo]: (b) => checkAnnounced(decodePackInfo(b)),
  [T.packEnd]: decodePackEnd,
  [T.result]: decodeResult,
  [T.error]: decodeError,
};

const syncFrames = target({
  name: 'sync messages',
  async: true,
  input: fc.array(hostileBytes(SYNC_SEEDS, 200), { minLength: 1, maxLength: 3 }),
  async check(frames) {
    const wire = new Wire(feeding(new Uint8Array(Buffer.concat(frames))), AbortSignal.timeout(5_000));
    for (;;) {
      const r = await verdictAsync(() => wire.recv());
      if (!r.accepted) return;
      const decode = DECODERS[r.value.type];
      if (decode) verdict(() => decode(r.value.payload));
    }
  },
});

// ── pack data: objects `type u8 ‖ size u32 BE ‖ content`, raw-deflated as one stream ───────────────

const ENTRY = signEntry(key, 'memory', { type: 'observation', content: 'x', tags: [] }).bytes;
function rawPack(objects: [number, Uint8Array][]): { bytes: Uint8Array; objects: number; rawBytes: number } {
  const parts = objects.flatMap(([t, c]) => {
    const h = Buffer.alloc(5);
    h[0] = t;
    h.writeUInt32BE(c.length, 1);
    return [h, Buffer.from(c)];
  });
  const raw = Buffer.concat(parts);
  return { bytes: new Uint8Array(deflateRawSync(raw)), objects: objects.length, rawBytes: raw.length };
}
const PACK = rawPack([
  [3, ENTRY],
  [2, Buffer.concat([Buffer.from('100644 e\0'), Buffer.alloc(20, 1)])],
  [1, utf8(`tree ${'1'.repeat(40)}\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\nm\n`)],
]);

const packData = target({
  name: 'sync pack data',
  async: true,
  input: fc.tuple(
    hostileBytes([PACK.bytes], 1200),
    fc.oneof(fc.constant(0), fc.integer({ min: -3, max: 3 })),
    fc.integer({ min: 1, max: 3 }),
  ),
  async check([bytes, skew, chunks]) {
    const info = { objects: PACK.objects + skew, rawBytes: PACK.rawBytes + skew * 50 };
    if (!verdict(() => checkAnnounced(info)).accepted) return;
    let inflated = 0;
    const u = new PackUnpacker(info, (_type, content) => {
      inflated += content.length + 5;
    });
    const step = Math.max(1, Math.ceil(bytes.length / chunks));
    const r = await verdictAsync(async () => {
      for (let at = 0; at < bytes.length; at += step) await u.push(bytes.subarray(at, at + step));
      await u.end();
    });
    u.destroy();
    // What a pack may cost us is what it announced, never more (a decompression bomb stops there).
    must(inflated <= info.rawBytes, `pack inflated to ${inflated} bytes past its announced ${info.rawBytes}`);
    if (r.accepted) must(inflated === info.rawBytes, 'a pack short of its announcement was accepted');
  },
  // Seed 20261203: a deflate stream that ended inside a PACK frame, with bytes after it, hung end() (its 'end'
  // listener came after the event): the receiver waited for the sync deadline.
  regressions: [[new Uint8Array(Buffer.concat([PACK.bytes, utf8('trailing')])), 0, 1]],
});

export const REQUEST_TARGETS: readonly FuzzTarget[] = [ipcRequests, mcpArguments, syncFrames, packData];
