import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentKey } from '../../src/identity/keys.js';
import {
  CELL_HEADER_LEN,
  dataCellWeight,
  FILLER_LEN,
  MAX_LINK_PAYLOAD,
  messageCapacity,
  RELAY_CLASSES,
  TAG_LEN,
} from '../../src/mesh/_wire.js';
import { cellHead, classFor, encodeMessage, messageParts, parseMessage } from '../../src/mesh/cells.js';
import { answerCreate, startCreate } from '../../src/mesh/handshake.js';
import {
  clientOpenBack,
  clientSealOut,
  forwardBody,
  forwardParts,
  type HopLayers,
  isRecognized,
  LayerKey,
  relayOpenForward,
  relaySealBackward,
  relaySealOwn,
} from '../../src/mesh/layers.js';

/** A client's and the relays' view of the same n hops (the relays' keys built from the same bytes). */
function hopPair(n: number): { client: HopLayers[]; relays: HopLayers[] } {
  const client: HopLayers[] = [];
  const relays: HopLayers[] = [];
  for (let i = 0; i < n; i++) {
    const f = randomBytes(32);
    const b = randomBytes(32);
    client.push({ forward: new LayerKey(Buffer.from(f)), backward: new LayerKey(Buffer.from(b)) });
    relays.push({ forward: new LayerKey(Buffer.from(f)), backward: new LayerKey(Buffer.from(b)) });
  }
  return { client, relays };
}

/** Runs a body out through relays 1..j: returns the plaintext hop j recognised, checking nothing earlier did. */
function goOut(relays: HopLayers[], j: number, body: Buffer): Buffer {
  let cell = body;
  for (let k = 1; k <= j; k++) {
    expect(cell.length).toBe(body.length);
    const plain = relayOpenForward(relays[k - 1] as HopLayers, cell);
    expect(plain, `hop ${k} failed to open`).not.toBeNull();
    if (k === j) {
      expect(isRecognized(plain as Buffer)).toBe(true);
      return plain as Buffer;
    }
    expect(isRecognized(plain as Buffer)).toBe(false);
    cell = forwardBody(plain as Buffer);
  }
  throw new Error('unreachable');
}

/** A message hop j originates and hops j-1..1 carry back. */
function goBack(relays: HopLayers[], j: number, plain: Buffer): Buffer {
  let cell = relaySealOwn(relays[j - 1] as HopLayers, plain);
  for (let k = j - 1; k >= 1; k--) cell = relaySealBackward(relays[k - 1] as HopLayers, cell);
  return cell;
}

describe('mesh layers', () => {
  it('the AES-GCM key stream is AES-CTR from nonce ‖ 2 (what the filler relies on)', () => {
    const m = 2032;
    const k = randomBytes(32);
    const sealed = new LayerKey(Buffer.from(k)).seal(Buffer.alloc(m)); // zeros: ciphertext = key stream
    expect(new LayerKey(Buffer.from(k)).tailStream(m, 64).equals(sealed.subarray(TAG_LEN + m - 64))).toBe(
      true,
    );
  });

  it('a message reaches hop j through 1..j−1 at constant size, and answers come back, for any path (seeded)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.uint8Array({ maxLength: 200 })), {
          minLength: 1,
          maxLength: 12,
        }),
        (n, cls, ops) => {
          const { client, relays } = hopPair(n);
          const bodyLen = (RELAY_CLASSES[cls] as readonly [number, number])[1];
          for (const [out, pick, data] of ops) {
            const j = 1 + (pick % n);
            const bytes = data.subarray(0, messageCapacity(bodyLen));
            const plain = encodeMessage(bodyLen, 3, j, bytes);
            if (out) {
              const body = clientSealOut(client, j, plain);
              expect(body.length).toBe(bodyLen);
              const got = parseMessage(goOut(relays, j, body));
              expect(got.stream).toBe(j);
              expect(Buffer.compare(got.data, Buffer.from(bytes))).toBe(0);
            } else {
              const body = goBack(relays, j, plain);
              expect(body.length).toBe(bodyLen);
              const opened = clientOpenBack(client, body);
              expect(opened.from).toBe(j);
              if (opened.from === null) return;
              const msg = parseMessage(opened.plain, opened.length);
              expect(Buffer.compare(msg.data, Buffer.from(bytes))).toBe(0);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('cells sealed as parts are the bytes of cells sealed whole (the wire does not change)', () => {
    const key = randomBytes(32);
    const [a, b] = [new LayerKey(Buffer.from(key)), new LayerKey(Buffer.from(key))];
    for (const [cmd, bodyLen] of RELAY_CLASSES) {
      for (const size of [0, 1, messageCapacity(bodyLen) - 8]) {
        const data = randomBytes(size);
        const prefix = randomBytes(8);
        const whole = encodeMessage(bodyLen, 3, 7, data, prefix);
        const parts = messageParts(bodyLen, 3, 7, data, prefix);
        expect(Buffer.concat(parts).equals(whole)).toBe(true);
        const sealed = Buffer.concat(b.sealParts(parts, cellHead(0x8000_0001, cmd), CELL_HEADER_LEN));
        expect(sealed.subarray(0, CELL_HEADER_LEN).equals(Buffer.from([0x80, 0, 0, 1, cmd]))).toBe(true);
        expect(sealed.subarray(CELL_HEADER_LEN).equals(a.seal(whole))).toBe(true);
        // a relay's forwarded cell: header ‖ plaintext ‖ 16 zeros, as forwardBody makes it
        const head = Buffer.from([0, 0, 0, 9, cmd]);
        expect(
          Buffer.concat(forwardParts(head, whole)).equals(Buffer.concat([head, forwardBody(whole)])),
        ).toBe(true);
      }
    }
    expect(a.counter).toBe(b.counter);
  });

  it('a full cell comes back from the exit of 1 to 5 hops, and a tampered one fails, with parts opened in place', () => {
    for (let n = 1; n <= 5; n++) {
      const { client, relays } = hopPair(n);
      const bytes = randomBytes(messageCapacity(16384));
      const opened = clientOpenBack(client, goBack(relays, n, encodeMessage(16384, 3, 1, bytes)));
      expect(opened.from).toBe(n);
      if (opened.from === null) return;
      expect(opened.length).toBe(16384 - TAG_LEN);
      // the first part holds all of the message: header and data end before the filler region
      expect(opened.plain.length).toBeGreaterThanOrEqual(16384 - TAG_LEN - FILLER_LEN);
      expect(parseMessage(opened.plain, opened.length).data.equals(bytes)).toBe(true);
      // without the whole length the message looks longer than its cell allows, and is refused
      if (n > 1) expect(() => parseMessage(opened.plain.subarray(0, 100), opened.length)).toThrow(/exceeds/);
      const bad = goBack(relays, n, encodeMessage(16384, 3, 1, bytes));
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
      expect(clientOpenBack(client, bad).from).toBeNull();
    }
  });

  it('one flipped bit anywhere in a body is caught by the next layer, in both directions', () => {
    const { client, relays } = hopPair(3);
    const plain = encodeMessage(2048, 3, 1, Buffer.from('hello'));
    // forward: hop 1 forwards a tampered body; hop 2 refuses it
    const body = clientSealOut(client, 3, plain);
    const p1 = relayOpenForward(relays[0] as HopLayers, body) as Buffer;
    const fwd = forwardBody(p1);
    fwd[100] = (fwd[100] as number) ^ 1;
    expect(relayOpenForward(relays[1] as HopLayers, fwd)).toBeNull();
    // backward: the middle tampers before the guard seals: the client fails at layer 2
    const { client: c2, relays: r2 } = hopPair(3);
    let cell = relaySealOwn(r2[2] as HopLayers, plain);
    cell = relaySealBackward(r2[1] as HopLayers, cell);
    cell[2000] = (cell[2000] as number) ^ 0x80;
    cell = relaySealBackward(r2[0] as HopLayers, cell);
    const opened = clientOpenBack(c2, cell);
    expect(opened).toEqual({ from: null, failedAt: 2 });
  });

  it('a replayed or reordered cell fails (counters are nonces)', () => {
    const { client, relays } = hopPair(2);
    const a = clientSealOut(client, 2, encodeMessage(128, 9, 0, Buffer.from([1])));
    const b = clientSealOut(client, 2, encodeMessage(128, 9, 0, Buffer.from([2])));
    expect(relayOpenForward(relays[0] as HopLayers, b)).toBeNull(); // b before a
    expect(relayOpenForward(relays[0] as HopLayers, a)).not.toBeNull();
    expect(relayOpenForward(relays[0] as HopLayers, a)).toBeNull(); // a again
  });

  it('picks the smallest size class that fits; capacity does not depend on the path length', () => {
    expect(classFor(0)[1]).toBe(128);
    expect(classFor(messageCapacity(128))[1]).toBe(128);
    expect(classFor(messageCapacity(128) + 1)[1]).toBe(2048);
    expect(classFor(messageCapacity(16384))[1]).toBe(16384);
    expect(classFor(messageCapacity(16384) + 1)[1]).toBe(65520);
    expect(classFor(messageCapacity(65520))[1]).toBe(65520);
    expect(() => classFor(messageCapacity(65520) + 1)).toThrow(RangeError);
    expect(messageCapacity(16384)).toBe(16384 - 16 - 13 - FILLER_LEN);
    // the largest cell still fits one link payload (one PQ frame)
    expect(5 + 65520).toBeLessThanOrEqual(MAX_LINK_PAYLOAD);
    expect(dataCellWeight(messageCapacity(16384))).toBe(1);
    expect(dataCellWeight(messageCapacity(16384) + 1)).toBe(4);
  });
});

describe('mesh circuit handshake', () => {
  it('client and relay derive the same layers; a wrong relay key is refused', () => {
    const relay = AgentKey.random();
    const pending = startCreate(relay.publicKey);
    const { created, layers } = answerCreate(relay, pending.body);
    const mine = pending.finish(created);
    const msg = encodeMessage(128, 9, 0, Buffer.from([7]));
    const out = clientSealOut([mine], 1, msg);
    expect(parseMessage(relayOpenForward(layers, out) as Buffer).data[0]).toBe(7);

    const other = AgentKey.random();
    const p2 = startCreate(other.publicKey); // the client expects `other`, but `relay` answers
    const a2 = answerCreate(relay, p2.body);
    expect(() => p2.finish(a2.created)).toThrow(/does not verify/);
  });

  it('a tampered CREATED fails the signature; a bad CREATE is malformed', () => {
    const relay = AgentKey.random();
    const pending = startCreate(relay.publicKey);
    const { created } = answerCreate(relay, pending.body);
    created[40] = (created[40] as number) ^ 1;
    expect(() => pending.finish(created)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE' }));
    const bad = Buffer.from(startCreate(relay.publicKey).body);
    bad[0] = 2;
    expect(() => answerCreate(relay, bad)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE' }));
  });
});
