// kill -9 of the real agent daemon (`mmogit tor start`, its own tor on the private network) mid-file, restarted
// on the same config dir; the other side is an in-process agent with its own tor.
// - Receiving daemon killed: the in-process sender's `sendFile` keeps redialling (bounded attempts and time);
//   after the restart the transfer resumes from the offset the receiver had made durable.
// - Sending daemon killed (`send --file --background`): the restarted daemon finds the signed offer in its file
//   outbox, checks the file again and resumes it under the same id from the receiver's offset (its `file-resumed`
//   event), never from 0 under a new id.
// Either way the stored file has the sender's sha256, it is listed in the inbox exactly once, no partial is left,
// `git fsck --strict` is clean, every memory the daemon reported stored is recalled, and its outbox is intact.
// A kill is made only once the receiver holds a checkpoint (an ack, FILE_ACK_EVERY_BYTES), so every run must
// resume from a non-zero offset.
// Opt-in (long runs on tor): MMOGIT_KILL_FILE_RUNS=N, or `npm run reliability -- kill-file N` (receiving side),
// `npm run reliability -- kill-file-send N` (sending side).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { SendFileResult } from '../../src/agent/files-send.js';
import { FILE_ACK_EVERY_BYTES } from '../../src/agent/files-wire.js';
import { AgentKey } from '../../src/identity/keys.js';
import { seededFile } from '../agent/files-helpers.js';
import { runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';
import { until } from './_helpers.js';
import { fsckStrict, kill9, seededRandom, startDaemon } from './kill-harness.js';

const RUNS_ENV = Number(process.env.MMOGIT_KILL_FILE_RUNS);
const RUNS = Number.isSafeInteger(RUNS_ENV) && RUNS_ENV > 0 ? RUNS_ENV : 0;
const SIZE = 4 * 1024 * 1024;
/**
 * The sending side's file: bigger than the sender's window (FILE_WINDOW_BYTES, 4 MiB) past the kill point, so
 * at the kill the sender cannot have sent its last byte and `end` yet — with 4 MiB the receiver often got the
 * whole file from what was in flight and stored it, and the restarted sender was answered `stored` with
 * nothing to resume (correct, but it does not test a resumption).
 */
const SEND_SIZE = 16 * 1024 * 1024;

let root: string;
let network: string;
let home: string;
let peer: Agent;
let pid = 0;
let onion = '';
const queuedOffline: string[] = [];
const ownMemories: string[] = [];

const cli = (args: string[], timeoutMs = 120_000) => runCli([...args, '--config-dir', home], { timeoutMs });

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * What a receiver (config dir `dir`) holds of transfers in progress: bytes in its `.part` files, and the largest
 * offset a checkpoint made durable (its `.json` states).
 */
async function partialHeld(configDir: string): Promise<{ bytes: number; durable: number }> {
  const dir = join(configDir, 'files', '.partial');
  let bytes = 0;
  let durable = 0;
  for (const f of await readdir(dir).catch(() => [])) {
    if (f.endsWith('.part')) bytes += (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size;
    if (f.endsWith('.json')) {
      const state = await readFile(join(dir, f), 'utf8').catch(() => '');
      try {
        durable = Math.max(durable, Number((JSON.parse(state) as { offset?: unknown }).offset) || 0);
      } catch {
        // mid-rename: the next poll reads it
      }
    }
  }
  return { bytes, durable };
}

/** Waits until `configDir` holds at least `killAt` bytes and a durable checkpoint (or the transfer is over). */
async function heldForKill(
  configDir: string,
  killAt: number,
  done: () => boolean | Promise<boolean>,
  what: string,
) {
  return until(
    async () => {
      const h = await partialHeld(configDir);
      return (h.bytes >= killAt && h.durable >= FILE_ACK_EVERY_BYTES) || (await done()) ? h.bytes : undefined;
    },
    180_000,
    what,
    20,
  );
}

describe.runIf(RUNS > 0)('kill -9 of the daemon mid-file', () => {
  beforeAll(async () => {
    network = (await testNetwork()).dir;
    root = await mkdtemp(join(tmpdir(), 'mmogit-kill-file-'));
    home = join(root, 'a');
    const init = await runCli(['init', '--json', '--config-dir', home]);
    expect(init.exitCode, init.stderr).toBe(0);
    onion = init.json<{ onion: string }>().onion;
    peer = (await Agent.init({ configDir: join(root, 'peer') })).agent;
    const [started] = await Promise.all([
      startDaemon(home, network),
      peer.start({ network, timeoutMs: 150_000, selfProbe: false }),
    ]);
    pid = started;
    // a message for an agent that never comes up: it stays in the daemon's outbox through every kill
    const s = await cli(['send', AgentKey.random().onion, 'for an offline agent', '--json']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(s.json<{ status: string }>().status).toBe('queued');
    queuedOffline.push(s.json<{ id: string }>().id);
  }, 400_000);

  afterAll(async () => {
    await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
    await peer?.close();
    if (root) await rm(root, { recursive: true, force: true });
  }, 60_000);

  it(
    `receiving daemon killed mid-transfer, ${RUNS} runs: resumed, same sha256, listed once, nothing else lost`,
    async () => {
      const random = seededRandom('kill-file');
      await mkdir(join(root, 'data'), { recursive: true });
      const ids: string[] = [];
      const resumed: number[] = [];
      let finishedFirst = 0;
      for (let i = 0; i < RUNS; i++) {
        const text = `own file-run ${i}`;
        const r = await cli(['remember', '-t', 'observation', text, '--tags', 'own', '--json']);
        expect(r.exitCode, r.stderr).toBe(0);
        ownMemories.push(text);
        const f = await seededFile(join(root, 'data'), `run-${i}.bin`, SIZE, 1000 + i);
        // kill once the daemon holds 15–75 % of the file and at least one checkpoint (an ack) is durable
        const killAt = Math.round(SIZE * (0.15 + 0.6 * random()));
        let done = false;
        const sending: Promise<SendFileResult> = peer
          .sendFile(onion, f.path, { attempts: 30, timeoutMs: 240_000 })
          .finally(() => {
            done = true;
          });
        const held = await heldForKill(
          home,
          killAt,
          () => done,
          `the daemon to hold ${killAt} bytes of run ${i}`,
        );
        if (done) {
          // The transfer outran the poll that places the kill (a 4 MiB file can finish between two looks at
          // the partial): no kill to test in this run, but the file must still be delivered whole, once.
          const out = await sending;
          expect(out).toMatchObject({ status: 'delivered', size: SIZE, sha256: f.sha256 });
          ids.push(out.id);
          finishedFirst++;
          process.stderr.write(`[kill] file run ${i + 1}/${RUNS}: the transfer finished before the kill\n`);
          await rm(f.path);
          continue;
        }
        await kill9(pid);
        expect(await fsckStrict(home), `fsck after file kill ${i}`).toBe('');
        const t0 = Date.now();
        pid = await startDaemon(home, network);
        const back = Date.now() - t0;
        const out = await sending;
        expect(out).toMatchObject({ status: 'delivered', size: SIZE, sha256: f.sha256 });
        expect(out.attempts, `run ${i}: attempts`).toBeGreaterThanOrEqual(2);
        // resumed from an acknowledged offset, not from 0, and never past what the daemon held at the kill
        const from = out.resumedFrom.at(-1) ?? 0;
        expect(from, `run ${i}: resumed from`).toBeGreaterThanOrEqual(FILE_ACK_EVERY_BYTES);
        expect(from).toBeLessThanOrEqual(held + FILE_ACK_EVERY_BYTES);
        resumed.push(from);
        ids.push(out.id);
        const stored = join(home, 'files', peer.address.replace(/\.onion$/, ''), `${out.id}-run-${i}.bin`);
        expect(await sha256Of(stored), `run ${i}: stored sha256`).toBe(f.sha256);
        expect(await readdir(join(home, 'files', '.partial'))).toEqual([]);
        // nothing else lost: own memories recalled, the outbox unchanged
        const rec = await cli(['recall', '--json', '--all', '--tag', 'own', '--limit', '100000']);
        const got = new Set(rec.json<{ content: string }[]>().map((e) => e.content));
        expect(ownMemories.filter((m) => !got.has(m))).toEqual([]);
        const ob = await cli(['outbox', '--json']);
        expect(ob.json<{ id: string }[]>().map((m) => m.id)).toEqual(queuedOffline);
        process.stderr.write(
          `[kill] file run ${i + 1}/${RUNS}: killed holding ${held} of ${SIZE}, daemon back in ${back} ms, ` +
            `resumed from ${out.resumedFrom.join(',')} after ${out.attempts} attempts, ${out.ms} ms in all\n`,
        );
        await rm(f.path);
      }
      const inbox = await cli(['inbox', '--type', 'file', '--json', '--limit', '100000']);
      expect(inbox.exitCode, inbox.stderr).toBe(0);
      const listed = inbox.json<{ id: string }[]>().map((m) => m.id);
      const counts = new Map<string, number>();
      for (const id of listed) counts.set(id, (counts.get(id) ?? 0) + 1);
      const lost = ids.filter((id) => !counts.has(id));
      const twice = [...counts].filter(([, c]) => c > 1);
      console.log(
        `[reliability] kill -9 mid-file: ${RUNS} runs of ${SIZE / 1024 / 1024} MiB (${RUNS - finishedFirst} ` +
          `killed mid-transfer, ${finishedFirst} finished first), resumed from ` +
          `${Math.min(...resumed)}–${Math.max(...resumed)} bytes; losses ${lost.length}, duplicates ${twice.length}, ` +
          'sha256 equal, fsck clean, memories and outbox intact',
      );
      expect(lost).toEqual([]);
      expect(twice).toEqual([]);
      expect(resumed.length, 'no run was killed mid-transfer').toBeGreaterThan(0);
    },
    120_000 + RUNS * 200_000,
  );

  it(
    `sending daemon killed mid-transfer, ${RUNS} runs: resumed under the same id from a non-zero offset, same sha256, listed once`,
    async () => {
      const random = seededRandom('kill-file-send');
      await mkdir(join(root, 'data'), { recursive: true });
      const ids: string[] = [];
      const resumed: number[] = [];
      const peerDir = peer.configDir;
      const fromDir = join(peerDir, 'files', onion.replace(/\.onion$/, ''));
      for (let i = 0; i < RUNS; i++) {
        const text = `own file-send-run ${i}`;
        const r = await cli(['remember', '-t', 'observation', text, '--tags', 'own', '--json']);
        expect(r.exitCode, r.stderr).toBe(0);
        ownMemories.push(text);
        const f = await seededFile(join(root, 'data'), `send-${i}.bin`, SEND_SIZE, 2000 + i);
        // 15–60 %: at least 6.4 MiB, more than the window, are still unsent at the kill
        const killAt = Math.round(SEND_SIZE * (0.15 + 0.45 * random()));
        const s = await cli(['send', peer.address, '--file', f.path, '--background', '--json']);
        expect(s.exitCode, s.stderr).toBe(0);
        const queued = s.json<{ id: string; status: string; reused: boolean }>();
        expect(queued).toMatchObject({ status: 'queued', reused: false });
        const id = queued.id;
        const listed = async () => (await peer.inbox({ type: 'file' })).some((m) => m.id === id);
        const held = await heldForKill(
          peerDir,
          killAt,
          listed,
          `the receiver to hold ${killAt} bytes of send run ${i}`,
        );
        expect(await listed(), `send run ${i}: the transfer ended before the kill`).toBe(false);
        await kill9(pid);
        expect(await fsckStrict(home), `fsck after send kill ${i}`).toBe('');
        const t0 = Date.now();
        pid = await startDaemon(home, network);
        const back = Date.now() - t0;
        await until(listed, 240_000, `send run ${i}: the receiver to list ${id}`, 200);
        const took = Date.now() - t0;
        const stored = join(fromDir, `${id}-send-${i}.bin`);
        expect(await sha256Of(stored), `send run ${i}: stored sha256`).toBe(f.sha256);
        // resumed under the same id, from the offset the receiver made durable
        const st = await cli(['tor', 'status', '--json']);
        expect(st.exitCode, st.stderr).toBe(0);
        const events = st.json<{ events: { type: string; detail: string }[] }>().events;
        const resumes = events.filter((e) => e.type === 'file-resumed' && e.detail.startsWith(`${id} `));
        expect(
          resumes.length,
          `send run ${i}: file-resumed events ${JSON.stringify(events)}`,
        ).toBeGreaterThan(0);
        const from = Number(resumes[0]?.detail.split(' from ')[1]);
        expect(from, `send run ${i}: resumed from`).toBeGreaterThanOrEqual(FILE_ACK_EVERY_BYTES);
        // (the receiver lives on: it keeps what was in flight, up to the sender's window, and checkpoints it)
        expect(from).toBeLessThan(SEND_SIZE);
        resumed.push(from);
        ids.push(id);
        // no partial left on the receiver (a restart under a new id would leave the cut one's)
        expect(await readdir(join(peerDir, 'files', '.partial'))).toEqual([]);
        expect((await readdir(fromDir)).filter((n) => n.endsWith(`-send-${i}.bin`))).toEqual([
          `${id}-send-${i}.bin`,
        ]);
        // nothing else lost: own memories recalled; the file entry leaves the outbox, the message stays
        const rec = await cli(['recall', '--json', '--all', '--tag', 'own', '--limit', '100000']);
        const got = new Set(rec.json<{ content: string }[]>().map((e) => e.content));
        expect(ownMemories.filter((m) => !got.has(m))).toEqual([]);
        await until(
          async () => {
            const ob = await cli(['outbox', '--json']);
            const left = ob.json<{ id: string }[]>().map((m) => m.id);
            return left.length === queuedOffline.length && left.every((x, k) => x === queuedOffline[k]);
          },
          30_000,
          `send run ${i}: the outbox back to the queued message only`,
          500,
        );
        process.stderr.write(
          `[kill] file-send run ${i + 1}/${RUNS}: killed with the receiver holding ${held} of ${SEND_SIZE}, daemon back ` +
            `in ${back} ms, resumed ${id} from ${from}, listed ${took} ms after the restart\n`,
        );
        await rm(f.path);
      }
      const listedIds = (await peer.inbox({ type: 'file' })).map((m) => m.id);
      const counts = new Map<string, number>();
      for (const id of listedIds) counts.set(id, (counts.get(id) ?? 0) + 1);
      const lost = ids.filter((id) => !counts.has(id));
      const twice = [...counts].filter(([, c]) => c > 1);
      console.log(
        `[reliability] kill -9 of the sender mid-file: ${RUNS} runs of ${SEND_SIZE / 1024 / 1024} MiB, resumed from ` +
          `${Math.min(...resumed)}–${Math.max(...resumed)} bytes under the same id; losses ${lost.length}, ` +
          `duplicates ${twice.length}, sha256 equal, no partial left, fsck clean, memories and outbox intact`,
      );
      expect(lost).toEqual([]);
      expect(twice).toEqual([]);
    },
    120_000 + RUNS * 200_000,
  );
});
