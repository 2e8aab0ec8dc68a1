import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import {
  acceptSession,
  FrameError,
  initiateSession,
  MAX_FRAME_DATA,
  type SecureSession,
} from '../../src/pqc/index.js';
import { channelPair, type RelayHooks, relayedPair } from './_net.js';

const HANDSHAKE_C2S = 1256 + 120;
const alice = AgentKey.random();
const bob = AgentKey.random();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function sessions(
  opts: { hooks?: RelayHooks; maxPayloadI?: number; maxPayloadR?: number } = {},
): Promise<{ i: SecureSession; r: SecureSession; pair: Awaited<ReturnType<typeof relayedPair>> }> {
  const pair = await relayedPair(opts.hooks);
  cleanups.push(() => pair.close());
  const [i, r] = await Promise.all([
    initiateSession(pair.client, alice, { expectedPeer: bob.onion, maxPayload: opts.maxPayloadI }),
    acceptSession(pair.server, bob, { maxPayload: opts.maxPayloadR }),
  ]);
  return { i, r, pair };
}

const eq = (a: Uint8Array | null, b: Uint8Array) => a !== null && Buffer.from(a).equals(Buffer.from(b));

describe('secure session: payloads', () => {
  it('round-trips payloads at frame boundaries both ways', async () => {
    const { i, r } = await sessions();
    const sizes = [
      0,
      1,
      MAX_FRAME_DATA - 1,
      MAX_FRAME_DATA,
      MAX_FRAME_DATA + 1,
      3 * MAX_FRAME_DATA + 7,
      1 << 20,
    ];
    for (const size of sizes) {
      const payload = new Uint8Array(randomBytes(size));
      await i.send(payload);
      expect(eq(await r.receive(), payload)).toBe(true);
      await r.send(payload);
      expect(eq(await i.receive(), payload)).toBe(true);
    }
  });

  it('queues concurrent sends without interleaving their frames', async () => {
    const { i, r } = await sessions();
    const payloads = Array.from({ length: 12 }, (_, n) => new Uint8Array(randomBytes(n * 40_000 + 3)));
    await Promise.all(payloads.map((p) => i.send(p)));
    for (const p of payloads) expect(eq(await r.receive(), p)).toBe(true);
  });

  it('property: random payload sequences arrive intact and in order', async () => {
    const { i, r } = await sessions();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 150_000 }), { maxLength: 6 }),
        async (payloads) => {
          const sent = Promise.all(payloads.map((p) => i.send(p)));
          for (const p of payloads) expect(eq(await r.receive(), p)).toBe(true);
          await sent;
        },
      ),
      { numRuns: 40 },
    );
  });

  it('never puts the plaintext on the wire', async () => {
    const { i, r, pair } = await sessions();
    const marker = Buffer.from('the-secret-marker-0123456789');
    await i.send(marker);
    await r.receive();
    expect(pair.relay.bytes('c2s').indexOf(marker)).toBe(-1);
  });
});

describe('secure session: close, cut, tamper', () => {
  it('ends with null after an authenticated close; pending payloads are still delivered', async () => {
    const { i, r } = await sessions();
    await i.send(Uint8Array.of(1));
    await i.send(Uint8Array.of(2));
    await i.close();
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([1]);
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([2]);
    expect(await r.receive()).toBeNull();
    expect(await r.receive()).toBeNull();
    await expect(i.send(Uint8Array.of(3))).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
    // Closing after the peer has gone is not an error (TCP without allowHalfOpen ends both directions).
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(r.close()).resolves.toBeUndefined();
    await expect(i.close()).resolves.toBeUndefined();
  });

  it('a connection cut without the close frame is an error, never a clean end', async () => {
    const { r, pair } = await sessions();
    pair.clientSocket.destroy();
    const err = await r.receive().catch((e) => e);
    expect(hasCode(err, 'ERR_CONNECTION_CLOSED')).toBe(true);
    expect(err.details?.reason).toBe('no-close-frame');
  });

  it('a frame cut in the middle fails with ERR_BAD_FRAME "truncated"', async () => {
    const { i, r } = await sessions({ hooks: { cutAfter: { c2s: HANDSHAKE_C2S + 1000 } } });
    void i.send(new Uint8Array(100_000)).catch(() => {});
    const err = await r.receive().catch((e) => e);
    expect(err).toBeInstanceOf(FrameError);
    expect(err).toMatchObject({ code: 'ERR_BAD_FRAME', reason: 'truncated' });
    // The session is dead: the same error again.
    await expect(r.receive()).rejects.toBe(err);
  });

  it('a flipped bit inside a frame fails authentication', async () => {
    const flip: RelayHooks['transform'] = (d, chunk, offset) => {
      const at = HANDSHAKE_C2S + 4 + 3;
      if (d !== 'c2s' || at < offset || at >= offset + chunk.length) return chunk;
      const copy = Buffer.from(chunk);
      copy[at - offset] = (copy[at - offset] as number) ^ 0x80;
      return copy;
    };
    const { i, r } = await sessions({ hooks: { transform: flip } });
    await i.send(new TextEncoder().encode('pay me 100'));
    await expect(r.receive()).rejects.toMatchObject({ code: 'ERR_BAD_FRAME', reason: 'auth' });
  });

  it('a frame length over the maximum is refused before its body is read', async () => {
    const grow: RelayHooks['transform'] = (d, chunk, offset) => {
      const at = HANDSHAKE_C2S; // first byte of the first frame's length
      if (d !== 'c2s' || at < offset || at >= offset + chunk.length) return chunk;
      const copy = Buffer.from(chunk);
      copy[at - offset] = 0x7f;
      return copy;
    };
    const { i, r } = await sessions({ hooks: { transform: grow } });
    await i.send(Uint8Array.of(1, 2, 3));
    await expect(r.receive()).rejects.toMatchObject({ code: 'ERR_TOO_LARGE', reason: 'too-large' });
  });

  it('a replayed (duplicated) frame within a session is refused', async () => {
    const { i, r, pair } = await sessions();
    await i.send(Uint8Array.of(7, 7));
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([7, 7]);
    const frame = pair.relay.bytes('c2s').subarray(HANDSHAKE_C2S);
    expect(frame.length).toBe(4 + 1 + 2 + 16);
    pair.relay.inject('c2s', frame);
    await expect(r.receive()).rejects.toMatchObject({ code: 'ERR_BAD_FRAME', reason: 'auth' });
  });
});

describe('secure session: limits and cancellation', () => {
  it('refuses an incoming payload over maxPayload', async () => {
    const { i, r } = await sessions({ maxPayloadR: 100_000 });
    await i.send(new Uint8Array(100_000));
    expect((await r.receive())?.length).toBe(100_000);
    void i.send(new Uint8Array(200_000)).catch(() => {});
    await expect(r.receive()).rejects.toMatchObject({ code: 'ERR_TOO_LARGE' });
  });

  it('refuses to send over its own maxPayload and stays usable', async () => {
    const { i, r } = await sessions({ maxPayloadI: 10 });
    await expect(i.send(new Uint8Array(11))).rejects.toMatchObject({ code: 'ERR_TOO_LARGE' });
    await i.send(new Uint8Array(10));
    expect((await r.receive())?.length).toBe(10);
  });

  it('an idle receive can be aborted or time out without killing the session', async () => {
    const { i, r } = await sessions();
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 30);
    expect(hasCode(await r.receive({ signal: ctl.signal }).catch((e) => e), 'ERR_ABORTED')).toBe(true);
    expect(hasCode(await r.receive({ timeoutMs: 30 }).catch((e) => e), 'ERR_TIMEOUT')).toBe(true);
    await i.send(Uint8Array.of(42));
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([42]);
  });

  it('a session over a plain channel pair (no relay) works too', async () => {
    const pair = await channelPair();
    cleanups.push(() => pair.close());
    const [i, r] = await Promise.all([
      initiateSession(pair.client, alice, { expectedPeer: bob.onion }),
      acceptSession(pair.server, bob),
    ]);
    await r.send(Uint8Array.of(5));
    expect(Array.from((await i.receive()) as Uint8Array)).toEqual([5]);
  });
});

describe('secure session: returned arrays and aborted sends', () => {
  it('a received payload owns its whole buffer', async () => {
    const { i, r } = await sessions();
    await i.send(Uint8Array.of(1, 2, 3));
    const got = (await r.receive()) as Uint8Array;
    expect(got.byteOffset).toBe(0);
    expect(got.buffer.byteLength).toBe(3);
  });

  it('a send aborted before it starts leaves the session usable', async () => {
    const { i, r } = await sessions();
    const err = await i.send(Uint8Array.of(1), { signal: AbortSignal.abort() }).catch((e) => e);
    expect(hasCode(err, 'ERR_ABORTED')).toBe(true);
    await i.send(Uint8Array.of(2));
    expect(Array.from((await r.receive()) as Uint8Array)).toEqual([2]);
  });
});
