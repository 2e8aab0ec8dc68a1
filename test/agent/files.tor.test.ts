// File transfer on the private Tor network with real agents: a's CLI daemon sends a 50 MB file to b (an SDK
// agent with its own tor) with `mmogit send --file --json`; mid-way b really drops every libp2p connection to
// a (the streams and the tor circuits' sockets under them), a's daemon redials and resumes from b's durable
// offset, and the stored file has the same sha256. Bad `--file` input gets its typed error and exit code.
// Bounded: the transfer has 240 s, the whole file 400 s (the time and throughput are printed).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import { Agent } from '../../src/agent/agent.js';
import { MmogitError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';
import { seededFile } from './files-helpers.js';

const SIZE = 50 * 1024 * 1024;
let root: string;
let network: string;
let b: Agent;
let aOnion: string;
const home = (name: string) => join(root, name);

async function cli(args: string[], timeoutMs = 120_000) {
  return runCli([...args, '--config-dir', home('a')], { timeoutMs });
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Bytes b holds of transfers in progress. */
async function partialBytes(): Promise<number> {
  const dir = join(home('b'), 'files', '.partial');
  let n = 0;
  for (const f of await readdir(dir).catch(() => [])) {
    if (f.endsWith('.part')) n += (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-files-'));
  const init = await cli(['init', '--json']);
  expect(init.exitCode, init.stderr).toBe(0);
  aOnion = init.json<{ onion: string }>().onion;
  b = (await Agent.init({ configDir: home('b') })).agent;
  const [started] = await Promise.all([
    cli(['tor', 'start', '--network', network, '--json'], 150_000),
    b.start({ network, timeoutMs: 150_000 }),
  ]);
  expect(started?.exitCode, started?.stderr).toBe(0);
  expect((await cli(['contacts', 'add', 'bob', b.address])).exitCode).toBe(0);
}, 400_000);

afterAll(async () => {
  await b?.close();
  await cli(['tor', 'stop']).catch(() => {});
  await rm(root, { recursive: true, force: true });
}, 120_000);

describe('file transfer over tor', () => {
  it('a 50 MB file survives a dropped connection mid-way: resumed, same sha256, listed in the inbox', async () => {
    await mkdir(home('data'), { recursive: true });
    const f = await seededFile(home('data'), 'fifty.bin', SIZE, 50);
    let dropped = -1;
    const run = cli(['send', 'bob', '--file', f.path, '--json'], 240_000);
    let done = false;
    void run.finally(() => {
      done = true;
    });
    // Drop once b holds between 10 and 40 MB: b's tor closes its rendezvous circuits (every stream on them dies,
    // the direct file stream included: docs/protocol.md §5.11), and every libp2p connection is aborted.
    while (!done && dropped < 0) {
      const have = await partialBytes();
      if (have >= 10 * 1024 * 1024) {
        dropped = have;
        const ctl = b.net().tor.controller;
        const circuits = await ctl.getInfo('circuit-status');
        let closed = 0;
        for (const line of circuits.split('\n')) {
          const id = line.trim().split(' ', 1)[0] ?? '';
          if (!/^\d+$/.test(id) || !line.includes('PURPOSE=HS_SERVICE_REND')) continue;
          await ctl.request(`CLOSECIRCUIT ${id}`).then(
            () => closed++,
            () => {},
          );
        }
        expect(closed).toBeGreaterThan(0);
        for (const c of b.net().node.libp2p.getConnections()) {
          c.abort(new MmogitError('ERR_CONNECTION_CLOSED', 'test: dropped mid-transfer'));
        }
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(0);
    const out = r.json<{
      id: string;
      size: number;
      sha256: string;
      status: string;
      attempts: number;
      resumedFrom: number[];
      ms: number;
    }>();
    console.log(
      `50 MB over the private network: ${(out.ms / 1000).toFixed(1)} s, ${(SIZE / 1024 / 1024 / (out.ms / 1000)).toFixed(2)} MiB/s, dropped at ${dropped} bytes, resumed from ${out.resumedFrom.join(', ')}`,
    );
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(SIZE);
    expect(out).toMatchObject({ status: 'delivered', size: SIZE, sha256: f.sha256 });
    expect(out.attempts).toBeGreaterThanOrEqual(2);
    expect(out.resumedFrom[0]).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/sent [\d.]+ \/ 50\.0 MiB/);
    const stored = join(home('b'), 'files', aOnion.replace('.onion', ''), `${out.id}-fifty.bin`);
    expect(await sha256Of(stored)).toBe(f.sha256);
    expect((await stat(stored)).mode & 0o777).toBe(0o600);
    const inbox = await b.inbox({ type: 'file' });
    expect(inbox.map((m) => [m.id, m.verified, m.body])).toEqual([
      [out.id, true, { name: 'fifty.bin', size: SIZE, sha256: f.sha256 }],
    ]);
    expect(await readdir(join(home('b'), 'files', '.partial'))).toEqual([]);
  }, 300_000);

  it('a directory, a missing file and a file over the cap: typed errors with their exit code, nothing sent', async () => {
    const small = await seededFile(home('data'), 'small.bin', 1000, 3);
    for (const [args, code] of [
      [['--file', home('data')], 'ERR_FILE_UNREADABLE'],
      [['--file', join(home('data'), 'nope')], 'ERR_FILE_UNREADABLE'],
      [['--file', small.path, '--max-file-bytes', '999'], 'ERR_FILE_TOO_LARGE'],
    ] as const) {
      const r = await cli(['send', 'bob', ...args, '--json']);
      expect(r.exitCode, r.stderr).toBe(EXIT_CODES.usage);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code } });
    }
    expect(await b.inbox({ type: 'file' })).toHaveLength(1);
  }, 120_000);
});
