// The file-transfer protocol between two messengers on loopback: real PQ sessions over real 127.0.0.1
// sockets, real files on disk. Drops are real (the sockets are destroyed mid-transfer).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FileProgress } from '../../src/agent/files-send.js';
import {
  decodeFileRecord,
  encodeFileControl,
  encodeFileData,
  FILE_ACK_EVERY_BYTES,
  FILE_CHUNK_BYTES,
  signFileOffer,
} from '../../src/agent/files-wire.js';
import { MmogitError } from '../../src/errors.js';
import { rawFileSession, seededFile, withFiles } from './files-helpers.js';
import { agentsPerTest, collect, type Directory, waitFor } from './messaging-helpers.js';

const { agent, cleanup } = agentsPerTest();

async function pair(opts: { bobMax?: number } = {}) {
  const dir: Directory = new Map();
  const alice = await agent(dir);
  const bob = await agent(dir);
  const aliceFiles = await withFiles(alice);
  const bobErrors: MmogitError[] = [];
  const bobFiles = await withFiles(bob, {
    errors: bobErrors,
    ...(opts.bobMax !== undefined ? { maxFileBytes: opts.bobMax } : {}),
  });
  cleanup.push(
    () => aliceFiles.stop(),
    () => bobFiles.stop(),
  );
  return { alice, bob, aliceFiles, bobFiles, bobErrors };
}

async function partials(home: string): Promise<string[]> {
  return readdir(join(home, 'files', '.partial'));
}

/** The next control frame on a raw session. */
async function control(session: { receive(): Promise<Uint8Array | null> }) {
  const rec = await session.receive();
  if (rec === null) return null;
  const d = decodeFileRecord(rec);
  if (d.kind !== 'control') throw new Error('expected a control frame');
  return d.frame;
}

describe('file transfer (loopback)', () => {
  it('a 3 MiB file arrives whole, stored 0600 under files/<sender>/, listed once in the inbox with name, size, hash', async () => {
    const { alice, bob, aliceFiles } = await pair();
    const got = collect(bob);
    const f = await seededFile(alice.home, 'report.bin', 3 * 1024 * 1024 + 17);
    const events: FileProgress[] = [];
    const r = await aliceFiles.send(bob.key.onion, f.path, { onProgress: (e) => events.push(e) });
    expect(r).toMatchObject({
      status: 'delivered',
      name: 'report.bin',
      size: 3 * 1024 * 1024 + 17,
      sha256: f.sha256,
    });
    expect(r.attempts).toBe(1);
    expect(events.some((e) => e.phase === 'hash')).toBe(true);
    // The receiver acks each checkpoint once it is durable; checkpoints run beside its receive loop, one at a
    // time, so only the first offset is fixed (the first chunk past 1 MiB starts it); later ones depend on how
    // fast the disk is, but each is a chunk boundary or the end, at least FILE_ACK_EVERY_BYTES past the last.
    const acks = events.filter((e) => e.phase === 'send').map((e) => e.bytes);
    expect(acks[0]).toBe(17 * FILE_CHUNK_BYTES);
    for (let i = 1; i < acks.length; i++) {
      expect(acks[i]! - acks[i - 1]!).toBeGreaterThanOrEqual(FILE_ACK_EVERY_BYTES);
      expect(acks[i]! % FILE_CHUNK_BYTES === 0 || acks[i] === 3 * 1024 * 1024 + 17).toBe(true);
    }
    const stored = join(bob.home, 'files', alice.key.onion.replace('.onion', ''), `${r.id}-report.bin`);
    const bytes = await readFile(stored);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
    expect((await stat(stored)).mode & 0o777).toBe(0o600);
    expect((await stat(join(bob.home, 'files'))).mode & 0o777).toBe(0o700);
    expect(await partials(bob.home)).toEqual([]);
    const inbox = await bob.messenger.inbox({ type: 'file' });
    expect(inbox).toHaveLength(1);
    expect(inbox[0]).toMatchObject({
      id: r.id,
      from: alice.key.onion,
      verified: true,
      body: { name: 'report.bin', size: r.size, sha256: f.sha256 },
    });
    expect(got.map((m) => m.id)).toEqual([r.id]);
  });

  it('an empty file is a file too', async () => {
    const { alice, bob, aliceFiles } = await pair();
    const f = await seededFile(alice.home, 'empty', 0);
    const r = await aliceFiles.send(bob.key.onion, f.path);
    expect(r.size).toBe(0);
    expect((await bob.messenger.inbox({ type: 'file' }))[0]?.body).toMatchObject({
      size: 0,
      sha256: f.sha256,
    });
  });

  it('a dropped connection mid-way resumes from the last acknowledged offset, same sha256', async () => {
    const { alice, bob, aliceFiles } = await pair();
    const f = await seededFile(alice.home, 'big.bin', 8 * 1024 * 1024, 7);
    let dropped = false;
    const r = await aliceFiles.send(bob.key.onion, f.path, {
      onProgress: (e) => {
        if (!dropped && e.phase === 'send' && e.bytes >= 2 * FILE_ACK_EVERY_BYTES) {
          dropped = true;
          for (const s of alice.node.sockets) s.destroy(); // the real connection, mid-transfer
        }
      },
    });
    expect(dropped).toBe(true);
    expect(r.attempts).toBe(2);
    expect(r.resumedFrom).toHaveLength(1);
    expect(r.resumedFrom[0]).toBeGreaterThanOrEqual(2 * FILE_ACK_EVERY_BYTES);
    expect(r.resumedFrom[0]).toBeLessThan(r.size);
    const stored = join(bob.home, 'files', alice.key.onion.replace('.onion', ''), `${r.id}-big.bin`);
    expect(
      createHash('sha256')
        .update(await readFile(stored))
        .digest('hex'),
    ).toBe(f.sha256);
    expect(await bob.messenger.inbox({ type: 'file' })).toHaveLength(1);
  });

  it('the receiver answers a resumed offer with exactly the offset it holds durably', async () => {
    const { alice, bob } = await pair();
    const size = 3 * FILE_ACK_EVERY_BYTES;
    const offer = signFileOffer(alice.key, bob.key.onion, { name: 'x', size, sha256: '0'.repeat(64) });
    const first = await rawFileSession(alice, bob.key);
    await first.session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(first.session)).toEqual({ t: 'accept', offset: 0 });
    const sent = FILE_ACK_EVERY_BYTES + 5 * FILE_CHUNK_BYTES;
    for (let at = 0; at < sent; at += FILE_CHUNK_BYTES) {
      await first.session.send(encodeFileData(new Uint8Array(Math.min(FILE_CHUNK_BYTES, sent - at))));
    }
    expect(await control(first.session)).toEqual({ t: 'ack', offset: 17 * FILE_CHUNK_BYTES });
    await first.session.close(); // an orderly end before the data: the receiver keeps what it has
    await waitFor(async () => (await partials(bob.home)).length === 2, 5_000, 'partial state');
    const second = await rawFileSession(alice, bob.key);
    await second.session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(second.session)).toEqual({ t: 'accept', offset: sent });
    second.channel.abort(new Error('test done'));
  });

  it('the partial file never has a complete name; a wrong hash at the end discards it, nothing listed', async () => {
    const { alice, bob, bobErrors } = await pair();
    const size = 2 * FILE_CHUNK_BYTES;
    const offer = signFileOffer(alice.key, bob.key.onion, { name: 'lie.txt', size, sha256: 'f'.repeat(64) });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(session)).toEqual({ t: 'accept', offset: 0 });
    await session.send(encodeFileData(new Uint8Array(FILE_CHUNK_BYTES)));
    await session.send(encodeFileData(new Uint8Array(FILE_CHUNK_BYTES)));
    const names = await partials(bob.home);
    expect(names.every((n) => n.endsWith('.part') || n.endsWith('.json'))).toBe(true);
    await session.send(encodeFileControl({ t: 'end' }));
    expect(await control(session)).toMatchObject({ t: 'err', code: 'ERR_FILE_HASH_MISMATCH' });
    expect(await partials(bob.home)).toEqual([]);
    expect(await readdir(join(bob.home, 'files'))).toEqual(['.partial']);
    expect(await bob.messenger.inbox({ type: 'file' })).toEqual([]);
    expect(bobErrors.map((e) => e.code)).toContain('ERR_FILE_HASH_MISMATCH');
  });

  it('data past the declared size is refused (ERR_FILE_OVERRUN) and the partial file discarded', async () => {
    const { alice, bob } = await pair();
    const offer = signFileOffer(alice.key, bob.key.onion, { name: 'x', size: 1000, sha256: '0'.repeat(64) });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(session)).toEqual({ t: 'accept', offset: 0 });
    await session.send(encodeFileData(new Uint8Array(1001)));
    expect(await control(session)).toMatchObject({ t: 'err', code: 'ERR_FILE_OVERRUN' });
    expect(await partials(bob.home)).toEqual([]);
  });

  it('an end short of the declared size is refused too', async () => {
    const { alice, bob } = await pair();
    const offer = signFileOffer(alice.key, bob.key.onion, { name: 'x', size: 1000, sha256: '0'.repeat(64) });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    await control(session);
    await session.send(encodeFileData(new Uint8Array(999)));
    await session.send(encodeFileControl({ t: 'end' }));
    expect(await control(session)).toMatchObject({ t: 'err', code: 'ERR_FILE_OVERRUN' });
    expect(await bob.messenger.inbox({ type: 'file' })).toEqual([]);
  });

  it('a hostile sender claiming a huge size is refused before any data (ERR_FILE_TOO_LARGE), no partial made', async () => {
    const { alice, bob } = await pair();
    const offer = signFileOffer(alice.key, bob.key.onion, {
      name: 'huge',
      size: Number.MAX_SAFE_INTEGER,
      sha256: '0'.repeat(64),
    });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(session)).toMatchObject({ t: 'err', code: 'ERR_FILE_TOO_LARGE' });
    expect(await partials(bob.home)).toEqual([]);
  });

  it("a file over the receiver's cap: the sender gets ERR_FILE_TOO_LARGE, nothing is stored", async () => {
    const { alice, bob, aliceFiles } = await pair({ bobMax: 100_000 });
    const f = await seededFile(alice.home, 'f', 100_001);
    await expect(aliceFiles.send(bob.key.onion, f.path)).rejects.toMatchObject({
      code: 'ERR_FILE_TOO_LARGE',
    });
    expect(await partials(bob.home)).toEqual([]);
  });

  it("a file over the sender's cap is refused before anything is sent", async () => {
    const { alice, bob, aliceFiles } = await pair();
    const f = await seededFile(alice.home, 'f', 5000);
    const sockets = alice.node.sockets.size;
    await expect(aliceFiles.send(bob.key.onion, f.path, { maxFileBytes: 4999 })).rejects.toMatchObject({
      code: 'ERR_FILE_TOO_LARGE',
      details: { bytes: 5000, limit: 4999 },
    });
    expect(alice.node.sockets.size).toBe(sockets);
  });

  it('a directory, a missing path and a FIFO are ERR_FILE_UNREADABLE with their reason', async () => {
    const { alice, bob, aliceFiles } = await pair();
    const fifo = join(alice.home, 'pipe');
    execFileSync('mkfifo', [fifo]);
    await mkdir(join(alice.home, 'd'));
    for (const [path, reason] of [
      [join(alice.home, 'd'), 'directory'],
      [join(alice.home, 'nope'), 'missing'],
      [fifo, 'unreadable'],
    ] as const) {
      const e = await aliceFiles.send(bob.key.onion, path).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(MmogitError);
      expect(e).toMatchObject({ code: 'ERR_FILE_UNREADABLE', details: { reason } });
    }
  });

  it("the sender's name is metadata only: a traversal name is stored inside files/<sender>/ under a sanitised name", async () => {
    const { alice, bob } = await pair();
    const content = Buffer.from('owned?');
    const sha256 = createHash('sha256').update(content).digest('hex');
    const name = '../../../.ssh/authorized_keys';
    const offer = signFileOffer(alice.key, bob.key.onion, { name, size: content.length, sha256 });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    await control(session);
    await session.send(encodeFileData(content));
    await session.send(encodeFileControl({ t: 'end' }));
    expect(await control(session)).toMatchObject({ t: 'stored' });
    const senderDir = join(bob.home, 'files', alice.key.onion.replace('.onion', ''));
    const stored = await readdir(senderDir);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatch(new RegExp(`^${offer.message.id}-[A-Za-z0-9._-]+$`));
    expect(stored[0]).not.toContain('..');
    expect(await readFile(join(senderDir, stored[0] as string), 'utf8')).toBe('owned?');
    expect((await bob.messenger.inbox({ type: 'file' }))[0]?.body).toMatchObject({ name });
  });

  it('an offer signed by someone else than the session peer is refused', async () => {
    const { alice, bob } = await pair();
    const { AgentKey } = await import('../../src/identity/keys.js');
    const mallory = AgentKey.random();
    const offer = signFileOffer(mallory, bob.key.onion, { name: 'x', size: 1, sha256: '0'.repeat(64) });
    const { session } = await rawFileSession(alice, bob.key);
    await session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    expect(await control(session)).toMatchObject({ t: 'err', code: 'ERR_UNTRUSTED_DATA' });
  });

  it('a bare message of type "file" on the messaging protocol is refused (only a stored file lists one)', async () => {
    const { alice, bob } = await pair();
    const refused = new Promise<MmogitError>((resolve) =>
      alice.messenger.once('queued', (e) => resolve(e.error)),
    );
    const r = await alice.messenger.send(bob.key.onion, {
      type: 'file',
      body: { name: 'x', size: 1, sha256: '0'.repeat(64) },
    });
    expect(r.status).toBe('queued');
    expect(await refused).toMatchObject({ code: 'ERR_UNTRUSTED_DATA' });
    expect(await bob.messenger.inbox()).toEqual([]);
  });

  it('a file that changes after it was hashed is refused (ERR_FILE_CHANGED), not retried', async () => {
    const { alice, bob, aliceFiles } = await pair();
    const f = await seededFile(alice.home, 'moving.bin', 2 * 1024 * 1024);
    let touched = false;
    const e = await aliceFiles
      .send(bob.key.onion, f.path, {
        onProgress: (p) => {
          if (!touched && p.phase === 'hash') {
            touched = true;
            appendFileSync(f.path, 'more');
          }
        },
      })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_FILE_CHANGED' });
    expect(await bob.messenger.inbox({ type: 'file' })).toEqual([]);
  });

  it('a resumption takes over from a stream the receiver still thinks alive, from at least its last ack', async () => {
    const { alice, bob } = await pair();
    const size = 4 * FILE_ACK_EVERY_BYTES;
    const offer = signFileOffer(alice.key, bob.key.onion, { name: 'x', size, sha256: '0'.repeat(64) });
    const stale = await rawFileSession(alice, bob.key);
    await stale.session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    await control(stale.session);
    for (let i = 0; i < 17; i++) await stale.session.send(encodeFileData(new Uint8Array(FILE_CHUNK_BYTES)));
    expect(await control(stale.session)).toEqual({ t: 'ack', offset: 17 * FILE_CHUNK_BYTES });
    // The stale stream stays open; a second one with the same offer arrives.
    const fresh = await rawFileSession(alice, bob.key);
    await fresh.session.send(encodeFileControl({ t: 'offer', m: offer.message, sig: offer.sig }));
    const accept = await control(fresh.session);
    expect(accept).toMatchObject({ t: 'accept' });
    expect((accept as { offset: number }).offset).toBeGreaterThanOrEqual(17 * FILE_CHUNK_BYTES);
    // The stale one was ended by the receiver (its stream dropped: the aborted read left its session unusable).
    await expect(control(stale.session)).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
    fresh.channel.abort(new Error('test done'));
    stale.channel.abort(new Error('test done'));
  });
});
