import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { acceptSession, HandshakeError, initiateSession } from '../../src/pqc/index.js';
import { channelFromDuplex } from '../../src/transport/byte-channel.js';
import { type ChannelPair, channelPair, connect, flipAt, listen, relayedPair, settle } from './_net.js';

// Wire sizes of the hybrid handshake (docs/protocol.md §4.3).
const MSG1 = 1256;
const MSG2 = 1272;
const MSG3 = 120;

const alice = AgentKey.random();
const bob = AgentKey.random();
const mallory = AgentKey.random();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
function track<T extends { close(): Promise<void> }>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}

function expectHandshake(result: { ok: boolean; error?: unknown }, reason?: string): HandshakeError {
  expect(result.ok).toBe(false);
  const error = (result as { error: unknown }).error;
  expect(error).toBeInstanceOf(HandshakeError);
  const e = error as HandshakeError;
  expect(e.code).toBe('ERR_HANDSHAKE');
  if (reason) expect(e.reason).toBe(reason);
  return e;
}

async function handshake(
  pair: ChannelPair,
  opts: Parameters<typeof initiateSession>[2] = { expectedPeer: bob.onion },
) {
  return Promise.all([
    settle(initiateSession(pair.client, alice, opts)),
    settle(acceptSession(pair.server, bob, {})),
  ]);
}

describe('pq handshake: happy path', () => {
  it('agrees on a hybrid session, authenticates both agents and carries payloads both ways', async () => {
    const pair = track(await relayedPair());
    const [i, r] = await Promise.all([
      initiateSession(pair.client, alice, { expectedPeer: bob.onion }),
      acceptSession(pair.server, bob),
    ]);
    expect(i.suite).toBe('hybrid-x25519-mlkem768');
    expect(r.suite).toBe('hybrid-x25519-mlkem768');
    expect(i.peer.onion).toBe(bob.onion);
    expect(Buffer.from(i.peer.publicKey).equals(Buffer.from(bob.publicKey))).toBe(true);
    expect(r.peer.onion).toBe(alice.onion);
    expect(Buffer.from(r.peer.publicKey).equals(Buffer.from(alice.publicKey))).toBe(true);
    expect(i.transcriptHash).toHaveLength(32);
    expect(Buffer.from(i.transcriptHash).equals(Buffer.from(r.transcriptHash))).toBe(true);
    expect(i.handshakeMs).toBeGreaterThan(0);

    await i.send(new TextEncoder().encode('hello bob'));
    expect(new TextDecoder().decode((await r.receive()) as Uint8Array)).toBe('hello bob');
    await r.send(new TextEncoder().encode('hello alice'));
    expect(new TextDecoder().decode((await i.receive()) as Uint8Array)).toBe('hello alice');

    // Exactly the documented message sizes crossed the wire, and no identity in clear.
    await i.close();
    expect(await r.receive()).toBeNull();
    const c2s = pair.relay.bytes('c2s');
    const s2c = pair.relay.bytes('s2c');
    expect(s2c.length).toBeGreaterThanOrEqual(MSG2);
    expect(c2s.subarray(0, 4).toString('latin1')).toBe('MMPQ');
    expect(c2s.indexOf(Buffer.from(alice.publicKey))).toBe(-1);
    expect(s2c.indexOf(Buffer.from(bob.publicKey))).toBe(-1);
    expect(c2s.indexOf(Buffer.from('hello bob'))).toBe(-1);
    // c2s: msg1 ‖ msg3 ‖ one data frame (4 + 1 + 9 + 16) ‖ close frame (4 + 1 + 16)
    expect(c2s.length).toBe(MSG1 + MSG3 + 30 + 21);
    expect(s2c.length).toBe(MSG2 + 32);
  });

  it('two sessions between the same agents have different transcripts (fresh ephemerals)', async () => {
    const hashes: string[] = [];
    for (let n = 0; n < 2; n++) {
      const pair = track(await channelPair());
      const [i, r] = await handshake(pair);
      expect(i.ok && r.ok).toBe(true);
      if (i.ok) hashes.push(Buffer.from(i.value.transcriptHash).toString('hex'));
    }
    expect(hashes[0]).not.toBe(hashes[1]);
  });

  it('prefers the hybrid suite even when both sides allow classical', async () => {
    const pair = track(await channelPair());
    const [i, r] = await Promise.all([
      initiateSession(pair.client, alice, { expectedPeer: bob.onion, allowClassical: true }),
      acceptSession(pair.server, bob, { allowClassical: true }),
    ]);
    expect(i.suite).toBe('hybrid-x25519-mlkem768');
    expect(r.suite).toBe('hybrid-x25519-mlkem768');
  });

  it('runs the classical suite only when both sides allow it', async () => {
    const pair = track(await relayedPair());
    const [i, r] = await Promise.all([
      initiateSession(pair.client, alice, {
        expectedPeer: bob.onion,
        allowClassical: true,
        suites: ['classical-x25519'],
      }),
      acceptSession(pair.server, bob, { allowClassical: true }),
    ]);
    expect(i.suite).toBe('classical-x25519');
    expect(r.suite).toBe('classical-x25519');
    await i.send(Uint8Array.of(1, 2, 3));
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([1, 2, 3]);
    expect(pair.relay.bytes('c2s').length).toBeGreaterThanOrEqual(72 + MSG3);
  });
});

describe('pq handshake: refusals', () => {
  it('refuses a classical-only peer by default, with a typed error on both sides', async () => {
    const pair = track(await channelPair());
    const [i, r] = await Promise.all([
      settle(
        initiateSession(pair.client, alice, {
          expectedPeer: bob.onion,
          allowClassical: true,
          suites: ['classical-x25519'],
        }),
      ),
      settle(acceptSession(pair.server, bob)),
    ]);
    expectHandshake(r, 'unsupported-suite');
    const e = expectHandshake(i, 'unsupported-suite');
    expect(e.details?.remote).toBe(true);
  });

  it('never offers classical without allowClassical', async () => {
    const pair = track(await channelPair());
    await expect(
      initiateSession(pair.client, alice, { expectedPeer: bob.onion, suites: ['classical-x25519'] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('rejects a responder that is not the onion we dialled (wrong identity)', async () => {
    const pair = track(await channelPair());
    const [i, r] = await Promise.all([
      settle(initiateSession(pair.client, alice, { expectedPeer: mallory.onion })),
      settle(acceptSession(pair.server, bob)),
    ]);
    const e = expectHandshake(i, 'wrong-identity');
    expect(e.details).toMatchObject({ expected: mallory.onion, got: bob.onion });
    // The responder never gets a session: the initiator hung up before proving itself.
    expectHandshake(r, 'truncated');
  });

  it('rejects an invalid expectedPeer before writing anything', async () => {
    const pair = track(await relayedPair());
    await expect(initiateSession(pair.client, alice, { expectedPeer: 'nope.onion' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ONION',
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(pair.relay.bytes('c2s').length).toBe(0);
  });

  it('answers a peer that speaks something else with reason "version"', async () => {
    const listener = track(await listen());
    const accepted = listener.next().then((s) => settle(acceptSession(channelFromDuplex(s), bob)));
    const socket = await connect(listener.port);
    socket.write('GET / HTTP/1.1\r\n\r\n');
    expectHandshake(await accepted, 'version');
    socket.destroy();
  });

  it('sends a version alert that the initiator reports as a remote version refusal', async () => {
    const listener = track(await listen());
    const accepted = listener.next().then((s) => settle(acceptSession(channelFromDuplex(s), bob)));
    const socket = await connect(listener.port);
    const alert = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(Buffer.from([0x4d, 0x4d, 0x50, 0x51, 2, 1, 1, 0]));
    const e = expectHandshake(await accepted, 'version');
    expect(e.details?.peerVersion).toBe(2);
    expect([...(await alert)]).toEqual([0x4d, 0x4d, 0x50, 0x51, 1, 0xff, 1, 0]);
    socket.destroy();
  });

  it('times out with ERR_TIMEOUT when the responder never answers', async () => {
    const pair = track(await channelPair());
    const started = Date.now();
    const err = await initiateSession(pair.client, alice, { expectedPeer: bob.onion, timeoutMs: 200 }).catch(
      (e) => e,
    );
    expect(hasCode(err, 'ERR_TIMEOUT')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops with ERR_ABORTED when the caller aborts', async () => {
    const pair = track(await channelPair());
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const err = await acceptSession(pair.server, bob, { signal: ctl.signal }).catch((e) => e);
    expect(hasCode(err, 'ERR_ABORTED')).toBe(true);
  });
});

describe('pq handshake: tampering, truncation, replay', () => {
  const cases: [string, 'c2s' | 's2c', number, string, 'initiator' | 'responder'][] = [
    ['msg1 nonce', 'c2s', 8 + 5, 'tampered', 'initiator'],
    ['msg1 X25519 key', 'c2s', 8 + 32 + 7, 'tampered', 'initiator'],
    ['msg1 ML-KEM key', 'c2s', 8 + 64 + 600, 'tampered', 'initiator'],
    ['msg1 reserved byte', 'c2s', 7, 'malformed', 'responder'],
    ['msg2 nonce', 's2c', 8 + 1, 'tampered', 'initiator'],
    ['msg2 X25519 key', 's2c', 8 + 32 + 3, 'tampered', 'initiator'],
    ['msg2 ML-KEM ciphertext', 's2c', 8 + 64 + 500, 'tampered', 'initiator'],
    ['msg2 sealed identity', 's2c', MSG2 - 40, 'tampered', 'initiator'],
    ['msg2 tag', 's2c', MSG2 - 1, 'tampered', 'initiator'],
    ['msg3 header', 'c2s', MSG1 + 2, 'malformed', 'responder'],
    ['msg3 sealed identity', 'c2s', MSG1 + 8 + 10, 'tampered', 'responder'],
    ['msg3 tag', 'c2s', MSG1 + MSG3 - 1, 'tampered', 'responder'],
  ];
  for (const [name, dir, at, reason, detector] of cases) {
    it(`a flipped bit in the ${name} fails the handshake (${reason})`, async () => {
      const pair = track(await relayedPair({ transform: flipAt(dir, at) }));
      const [i, r] = await handshake(pair);
      expectHandshake(detector === 'initiator' ? i : r, reason);
      expect(r.ok).toBe(false); // the responder never accepts a tampered handshake
      if (dir === 's2c' || at < MSG1) expect(i.ok).toBe(false);
    });
  }

  it('property: any single flipped bit anywhere in the handshake is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<'c2s' | 's2c'>('c2s', 's2c'),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (dir, n, bit) => {
          const at = n % (dir === 'c2s' ? MSG1 + MSG3 : MSG2);
          const pair = await relayedPair({
            transform: (d, chunk, offset) => {
              if (d !== dir || at < offset || at >= offset + chunk.length) return chunk;
              const copy = Buffer.from(chunk);
              copy[at - offset] = (copy[at - offset] as number) ^ (1 << bit);
              return copy;
            },
          });
          try {
            const [i, r] = await handshake(pair, { expectedPeer: bob.onion, timeoutMs: 5_000 });
            expect(r.ok).toBe(false);
            expect(hasCode((r as { error: unknown }).error, 'ERR_HANDSHAKE')).toBe(true);
            if (dir === 's2c' || at < MSG1) {
              expect(i.ok).toBe(false);
              expect(hasCode((i as { error: unknown }).error, 'ERR_HANDSHAKE')).toBe(true);
            }
          } finally {
            await pair.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses bytes appended after message 1 (a message over its fixed size)', async () => {
    const junk = Buffer.alloc(16, 0xaa);
    const pair = track(
      await relayedPair({
        transform: (d, chunk, offset) =>
          d === 'c2s' && offset + chunk.length === MSG1 ? Buffer.concat([chunk, junk]) : chunk,
      }),
    );
    const [, r] = await handshake(pair);
    expectHandshake(r, 'malformed');
  });

  it('a handshake cut inside message 2 fails as truncated on the initiator', async () => {
    const pair = track(await relayedPair({ cutAfter: { s2c: 700 } }));
    const [i] = await handshake(pair);
    expectHandshake(i, 'truncated');
  });

  it('a handshake cut inside message 1 fails as truncated on the responder', async () => {
    const pair = track(await relayedPair({ cutAfter: { c2s: 100 } }));
    const [, r] = await handshake(pair);
    expectHandshake(r, 'truncated');
  });

  it('a handshake cut inside message 3 fails as truncated on the responder', async () => {
    const pair = track(await relayedPair({ cutAfter: { c2s: MSG1 + 50 } }));
    const [, r] = await handshake(pair);
    expectHandshake(r, 'truncated');
  });

  it('replaying a recorded initiator (messages 1 and 3) to a new responder fails', async () => {
    // Record a real, successful handshake.
    const pair = track(await relayedPair());
    const [i, r] = await handshake(pair);
    expect(i.ok && r.ok).toBe(true);
    const recorded = pair.relay.bytes('c2s');
    const msg1 = recorded.subarray(0, MSG1);
    const msg3 = recorded.subarray(MSG1, MSG1 + MSG3);

    // Replay it byte for byte to a fresh responder with the same identity.
    const listener = track(await listen());
    const accepted = listener.next().then((s) => settle(acceptSession(channelFromDuplex(s), bob)));
    const socket = await connect(listener.port);
    const replay = channelFromDuplex(socket);
    await replay.write(msg1);
    const msg2 = await replay.readExactly(MSG2);
    expect(Buffer.from(msg2.subarray(0, 4)).toString('latin1')).toBe('MMPQ');
    await replay.write(msg3);
    expectHandshake(await accepted, 'tampered');
    socket.destroy();
  });

  it('replaying a recorded responder (message 2) to a new initiator fails', async () => {
    const pair = track(await relayedPair());
    const [i, r] = await handshake(pair);
    expect(i.ok && r.ok).toBe(true);
    const msg2 = pair.relay.bytes('s2c').subarray(0, MSG2);

    const listener = track(await listen());
    const fake = listener.next().then(async (s) => {
      const ch = channelFromDuplex(s);
      await ch.readExactly(MSG1);
      await ch.write(msg2);
      return ch;
    });
    const socket = await connect(listener.port);
    const result = await settle(
      initiateSession(channelFromDuplex(socket), alice, { expectedPeer: bob.onion }),
    );
    expectHandshake(result, 'tampered');
    await fake;
  });

  it('a recorded session frame replayed into a new session is refused', async () => {
    const first = track(await relayedPair());
    const [i1, r1] = await handshake(first);
    if (!i1.ok || !r1.ok) throw new Error('handshake failed');
    await i1.value.send(Uint8Array.of(9, 9, 9));
    await r1.value.receive();
    const frame = first.relay.bytes('c2s').subarray(MSG1 + MSG3);

    const second = track(await relayedPair());
    const [i2, r2] = await handshake(second);
    if (!i2.ok || !r2.ok) throw new Error('handshake failed');
    second.relay.inject('c2s', frame);
    await expect(r2.value.receive()).rejects.toMatchObject({ code: 'ERR_BAD_FRAME', reason: 'auth' });
  });
});
