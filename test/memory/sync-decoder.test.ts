import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { EMPTY_TREE_OID } from '../../src/memory/_git.js';
import { makeObject } from '../../src/memory/odb.js';
import { printable } from '../../src/memory/sync/frames.js';
import { propertyParams } from '../helpers/property.js';
import { type Attacker, againstVictim, commitObject, F, rawPack } from './_attacker.js';
import { storeOpener } from './_helpers.js';

/**
 * Every control frame of the sync protocol, fed arbitrary JSON values (null, arrays, numbers, objects with the
 * right keys and wrong types) and arbitrary bytes: the victim fails only with a typed MmogitError, and tells
 * the peer why with an ERROR frame.
 */

const open = storeOpener('decoder');

const KEYS = [
  'proto',
  'onion',
  'nonce',
  'head',
  'sig',
  'need',
  'ids',
  'objects',
  'rawBytes',
  'code',
  'message',
];
const payloads = fc.oneof(
  fc.jsonValue(),
  fc.dictionary(fc.constantFrom(...KEYS), fc.jsonValue()),
  fc.uint8Array({ maxLength: 64 }),
);

type Step = (a: Attacker, payload: unknown) => Promise<void>;

const fakeHead = 'ab'.repeat(20);
let commits = 0;
/** A fresh one-commit history each time (the victim keeps the ones it accepted). */
function emptyHistory() {
  const commit = commitObject({ tree: EMPTY_TREE_OID, time: ++commits });
  return { commit, raw: rawPack([commit, makeObject('tree', new Uint8Array(0))]) };
}

/** Where the arbitrary payload goes, and which role the victim plays. */
const steps: [string, 'initiator' | 'responder', Step][] = [
  ['hello', 'responder', (a, p) => a.send(F.hello, p).then(() => a.read().then(() => {}))],
  [
    'ref',
    'responder',
    async (a, p) => {
      await a.hello();
      await a.send(F.ref, p);
    },
  ],
  [
    'want',
    'initiator',
    async (a, p) => {
      await a.hello();
      await a.read(); // the victim's REF
      await a.send(F.want, p);
    },
  ],
  [
    'have',
    'responder',
    async (a, p) => {
      await a.hello();
      await a.ref(fakeHead);
      await a.read(); // WANT
      await a.send(F.have, p);
    },
  ],
  [
    'pack-info',
    'responder',
    async (a, p) => {
      await a.hello();
      await a.ref(fakeHead);
      await a.read();
      await a.send(F.packInfo, p);
    },
  ],
  [
    'pack-end',
    'responder',
    async (a, p) => {
      const { commit, raw } = emptyHistory();
      await a.hello();
      await a.ref(commit.oid);
      await a.read();
      await a.send(F.packInfo, { objects: 2, rawBytes: raw.length });
      await a.send(F.pack, deflateRawSync(raw));
      await a.send(F.packEnd, p);
    },
  ],
  [
    'result',
    'initiator',
    async (a, p) => {
      await a.hello();
      await a.read();
      await a.send(F.want, { need: false });
      await a.send(F.result, p);
    },
  ],
  [
    'error',
    'responder',
    async (a, p) => {
      await a.hello();
      await a.send(F.error, p);
    },
  ],
];

// A payload that happens to be valid leaves both sides waiting for each other: the victim's deadline ends it.
const quiet = new Set(['ERR_CONNECTION_CLOSED', 'ERR_TIMEOUT']);

describe('the sync decoder throws only typed errors', () => {
  it.each(steps)(
    'for any %s payload',
    async (name, role, step) => {
      const victim = await open(name);
      const attacker = AgentKey.random();
      const params = propertyParams(`sync ${name} frame decoder`, { numRuns: 30 });
      await fc.assert(
        fc.asyncProperty(payloads, async (payload) => {
          let reply: number | null = null;
          const r = await againstVictim(
            victim,
            attacker,
            async (a) => {
              await step(a, payload);
              reply = (await a.read()).type;
            },
            { role, timeoutMs: 1500 },
          );
          if (r.error === null) return;
          expect(r.error, String(r.error)).toBeInstanceOf(MmogitError);
          const e = r.error as MmogitError;
          if (name === 'error') {
            // The peer's own refusal: reported with a safe message, not echoed back.
            expect(e.code).toBe('ERR_SYNC');
            expect(printable(e.message)).toBe(e.message);
            expect(e.message.length).toBeLessThan(400);
          } else if (!quiet.has(e.code)) {
            expect(reply, `${e.code}: ${e.message}`).toBe(F.error);
          }
        }),
        params,
      );
    },
    120_000,
  );
});
