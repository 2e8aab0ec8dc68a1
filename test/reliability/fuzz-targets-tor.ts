// Fuzz targets: tor's control replies and events (real transcripts, mutated), SOCKS5 replies from a hostile
// proxy, onion strings, and the mesh exit's SOCKS request parser.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import fc from 'fast-check';
import { onionFromPublicKey, parseOnionAddress } from '../../src/identity/onion.js';
import { parseSocksRequest } from '../../src/mesh/socks.js';
import { parseEvent } from '../../src/tor/control/events.js';
import { keyValues, MAX_REPLY_SIZE, ReplyParser } from '../../src/tor/control/reply.js';
import { socksConnect } from '../../src/tor/socks.js';
import { type FuzzTarget, hostileBytes, must, target, utf8, verdict, verdictAsync } from './fuzz-kit.js';

const FIXTURES = new URL('../fixtures/tor-control/', import.meta.url);
const TRANSCRIPTS = [
  'session-cookie.txt',
  'session-password-events.txt',
  'auth-bad-cookie.txt',
  'auth-bad-password.txt',
].map((f) => new Uint8Array(readFileSync(new URL(f, FIXTURES))));
// Real transcripts are up to 14 KB: fuzz each one's lines in windows so a case stays small and fast.
const REPLY_SEEDS = TRANSCRIPTS.flatMap((t) => {
  const lines = Buffer.from(t).toString('latin1').split('\n');
  const out: Uint8Array[] = [];
  for (let i = 0; i < lines.length; i += 6)
    out.push(Buffer.from(`${lines.slice(i, i + 8).join('\n')}\n`, 'latin1'));
  return out;
});

const controlReplies = target({
  name: 'tor control replies and events',
  input: fc.tuple(hostileBytes(REPLY_SEEDS, 600), fc.integer({ min: 1, max: 5 })),
  check([bytes, chunks]) {
    const p = new ReplyParser();
    const s = Buffer.from(bytes).toString('latin1');
    const step = Math.max(1, Math.ceil(s.length / chunks));
    for (let at = 0; at < s.length; at += step) {
      const r = verdict(() => p.push(s.slice(at, at + step)));
      if (!r.accepted) {
        must(r.error.code === 'ERR_TOR_CONTROL_PROTOCOL', `reply parser refused with ${r.error.code}`);
        return;
      }
      for (const reply of r.value) {
        must(reply.raw.length <= MAX_REPLY_SIZE, 'reply over the size limit accepted');
        verdict(() => keyValues(reply));
        if (reply.status === 650) verdict(() => parseEvent(reply));
      }
    }
  },
});

// ── SOCKS5: the proxy's side, as a hostile "tor" would answer ───────────────────────────────────────

let proxy: net.Server | undefined;
let proxyPort = 0;
let answer: Uint8Array = new Uint8Array(0);
const sockets = new Set<net.Socket>();

async function startProxy(): Promise<void> {
  if (proxy) return;
  proxy = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    // Answer as soon as the client's greeting arrives, then close: the client never waits on us.
    s.once('data', () => s.end(Buffer.from(answer)));
  });
  await new Promise<void>((resolve) => (proxy as net.Server).listen(0, '127.0.0.1', resolve));
  proxyPort = (proxy.address() as net.AddressInfo).port;
}

export async function stopProxy(): Promise<void> {
  for (const s of sockets) s.destroy();
  if (proxy) await new Promise((r) => (proxy as net.Server).close(r));
  proxy = undefined;
}

// A real tor answer: no-auth chosen, or username/password accepted, then a reply (success or an error code).
const SOCKS_SEEDS = [
  Uint8Array.of(5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90),
  Uint8Array.of(5, 2, 1, 0, 5, 0xf2, 0, 1, 0, 0, 0, 0, 0, 0),
  Uint8Array.of(5, 2, 1, 0, 5, 4, 0, 3, 5, 0x61, 0x62, 0x63, 0x64, 0x65, 0, 80),
  Uint8Array.of(5, 2, 1, 0, 5, 0, 0, 4, ...new Uint8Array(16), 0, 80),
];

const socksReplies = target({
  name: 'SOCKS5 replies',
  async: true,
  input: hostileBytes(SOCKS_SEEDS, 40),
  async check(bytes) {
    await startProxy();
    answer = bytes;
    const r = await verdictAsync(() =>
      socksConnect(
        { socksPort: proxyPort, host: 'abc.onion', port: 80, isolationKey: 'fuzz' },
        { timeoutMs: 3_000 },
      ),
    );
    if (r.accepted) r.value.destroy();
    else
      must(r.error.code === 'ERR_SOCKS' || r.error.code === 'ERR_TIMEOUT', `SOCKS refused ${r.error.code}`);
  },
});

// ── onion strings ───────────────────────────────────────────────────────────────────────────────────

const KEYS = [
  new Uint8Array(32).fill(7),
  new Uint8Array(32).fill(0xd0),
  Uint8Array.from({ length: 32 }, (_, i) => i),
];
const ONION_SEEDS = KEYS.map((k) => utf8(onionFromPublicKey(k)));

const onionStrings = target({
  name: 'onion strings',
  input: fc.oneof(
    hostileBytes(ONION_SEEDS, 80).map((b) => Buffer.from(b).toString('latin1')),
    fc.string({ maxLength: 80 }),
  ),
  check(s) {
    const r = verdict(() => parseOnionAddress(s));
    if (!r.accepted) {
      must(r.error.code === 'ERR_INVALID_ONION', `onion refused with ${r.error.code}`);
      return;
    }
    // Accepted only when it is exactly the address of the key it encodes (case and `.onion` aside).
    must(onionFromPublicKey(r.value.publicKey) === r.value.hostname, 'onion accepted for another key');
    must(
      s
        .trim()
        .toLowerCase()
        .replace(/\.onion$/, '') === r.value.serviceId,
      'onion accepted with extra text',
    );
  },
});

// ── the mesh exit's SOCKS5 server: requests from a local client ─────────────────────────────────────

const SOCKS_REQUESTS = [
  Uint8Array.of(5, 1, 0, 5, 1, 0, 3, 9, ...utf8('127.0.0.1'), 0, 80),
  Uint8Array.of(5, 2, 0, 2, 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90),
  Uint8Array.of(5, 1, 0, 5, 1, 0, 4, ...new Uint8Array(15), 1, 1, 187),
];

const meshSocksRequests = target({
  name: 'mesh SOCKS5 requests',
  input: hostileBytes(SOCKS_REQUESTS, 300),
  check(bytes) {
    const r = verdict(() => parseSocksRequest(Buffer.from(bytes)));
    if (!r.accepted) {
      must(r.error.code === 'ERR_SOCKS', `SOCKS request refused with ${r.error.code}`);
      return;
    }
    if (r.value)
      must(r.value.requestLen + r.value.greetingLen <= bytes.length || r.value.target === null, 'overread');
  },
});

export const TOR_TARGETS: readonly FuzzTarget[] = [
  controlReplies,
  socksReplies,
  onionStrings,
  meshSocksRequests,
];
