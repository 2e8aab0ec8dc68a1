// The mesh as real processes on loopback: six `mmogit mesh relay --no-tor` relays, one `mmogit mesh socks`,
// curl (a client we did not write) through 3 hops to a local HTTP server, relays killed with SIGKILL.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes } from './_helpers.js';
import { httpServer, initDirs, killAll, type MeshProcess, startMmogit } from './_processes.js';

const run = promisify(execFile);
const TAMPER = new URL('./fixtures/tamper-relay.mjs', import.meta.url).pathname;
let root: string;
let http: Awaited<ReturnType<typeof httpServer>>;
let big: Awaited<ReturnType<typeof httpServer>>;
const relays: MeshProcess[] = [];
let socks: MeshProcess;

function relayByOnion(onion: unknown): MeshProcess {
  const r = relays.find((p) => p.info.onion === onion);
  if (!r) throw new Error(`no relay ${String(onion)}`);
  return r;
}

async function curl(
  port: number,
  url: string,
  out: string,
  extra: string[] = [],
): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run('curl', [
      '-sS',
      '--max-time',
      '60',
      '-x',
      `socks5h://127.0.0.1:${port}`,
      ...extra,
      '-o',
      out,
      url,
    ]);
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stderr: err.stderr ?? '' };
  }
}

async function fileSha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-mesh-'));
  http = await httpServer(patternBytes(2_000_000));
  big = await httpServer(patternBytes(50_000_000));
  const dirs = Array.from({ length: 6 }, (_, i) => join(root, `relay${i}`));
  await initDirs([...dirs, join(root, 'client')]);
  const exitTo = ['--exit-to', `127.0.0.1:${http.port}`, '--exit-to', `127.0.0.1:${big.port}`];
  relays.push(
    ...(await Promise.all(
      dirs.map((d) =>
        startMmogit(['mesh', 'relay', '--no-tor', '--listen', '127.0.0.1:0', ...exitTo, '--config-dir', d], {
          env: { DEBUG: 'mmogit:mesh:link,mmogit:mesh:relay' },
        }),
      ),
    )),
  );
  socks = await startMmogit(
    [
      'mesh',
      'socks',
      '--port',
      '0',
      '--hops',
      '3',
      '--config-dir',
      join(root, 'client'),
      ...relays.flatMap((r) => ['--relay', String(r.info.relay)]),
    ],
    { env: { DEBUG: 'mmogit:mesh,mmogit:mesh:set,mmogit:mesh:stream' } },
  );
}, 60_000);

/** The SOCKS process's last stderr lines, for failure messages. */
const tail = (p: MeshProcess = socks) => p.stderr.slice(-20).join('\n');

afterAll(async () => {
  killAll();
  http?.server.close();
  big?.server.close();
  await rm(root, { recursive: true, force: true });
});

describe('mesh processes on loopback', () => {
  it('curl through `mesh socks` over 3 hops gets the body byte-identical', async () => {
    expect(socks.info).toMatchObject({ mode: 'socks', hops: 3, relays: 6, tor: false });
    const out = join(root, 'small.bin');
    const r = await curl(socks.info.port as number, `http://127.0.0.1:${http.port}/x`, out);
    expect(r, tail()).toEqual({ code: 0, stderr: '' });
    expect(await fileSha(out)).toBe(http.sha256);
    const built = await socks.waitEvent((e) => e.event === 'circuit:built' && e.role === 'primary', 5_000);
    expect(built.path).toHaveLength(3);
  });

  it('kill -9 of the middle relay mid-transfer: 50 MB arrive with the same sha256', async () => {
    await socks.waitEvent((e) => e.event === 'circuit:built' && e.role === 'standby', 10_000);
    const primary = [...socks.events]
      .reverse()
      .find((e) => e.event === 'circuit:built' && e.role === 'primary');
    const out = join(root, 'big.bin');
    const transfer = curl(socks.info.port as number, `http://127.0.0.1:${big.port}/big`, out, [
      '--limit-rate',
      '20M',
    ]);
    // wait until a fifth is through, then kill the middle of the leg carrying it
    for (let i = 0; i < 300; i++) {
      if ((await stat(out).catch(() => ({ size: 0 }))).size > 10_000_000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const middle = relayByOnion(((primary?.path ?? []) as string[])[1]);
    const killedAt = performance.timeOrigin + performance.now();
    middle.kill('SIGKILL');
    const r = await transfer;
    expect(
      r.code,
      `${tail()}\n${relays.map((p) => `${p.info.onion}: ${p.stderr.slice(-6).join('\n')}`).join('\n')}`,
    ).toBe(0);
    expect(await fileSha(out)).toBe(big.sha256);
    const failed = await socks.waitEvent(
      (e) => e.event === 'circuit:failed' && (e.at as number) > killedAt,
      5_000,
    );
    const recovered = await socks.waitEvent(
      (e) => e.event === 'stream:recovered' && (e.at as number) > killedAt,
      5_000,
    );
    const mttd = (failed.at as number) - killedAt;
    const mttr = (recovered.at as number) - killedAt;
    process.stderr.write(`mesh kill -9 middle: MTTD ${mttd.toFixed(1)} ms, MTTR ${mttr.toFixed(1)} ms\n`);
    expect(mttd).toBeGreaterThanOrEqual(0);
    expect(mttr).toBeGreaterThanOrEqual(mttd);
  });

  it('kill -9 of the exit: the open stream fails clearly, a new stream works through a new exit', async () => {
    const primary = [...socks.events]
      .reverse()
      .find((e) => e.event === 'circuit:built' && e.role === 'primary');
    const built = socks.events.length;
    const out = join(root, 'big2.bin');
    const transfer = curl(socks.info.port as number, `http://127.0.0.1:${big.port}/big`, out, [
      '--limit-rate',
      '20M',
    ]);
    for (let i = 0; i < 300; i++) {
      if ((await stat(out).catch(() => ({ size: 0 }))).size > 2_000_000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const live =
      [...socks.events].slice(built).find((e) => e.event === 'circuit:built' && e.role === 'primary') ??
      primary;
    const exit = relayByOnion(((live?.path ?? []) as string[])[2]);
    const killedAt = performance.timeOrigin + performance.now();
    exit.kill('SIGKILL');
    const r = await transfer;
    expect(r.code).not.toBe(0); // curl: transfer closed with bytes outstanding
    const lost = await socks.waitEvent((e) => e.event === 'exit:lost' && (e.at as number) > killedAt, 5_000);
    expect(lost.exit).toBe(exit.info.onion);
    const again = join(root, 'again.bin');
    const r2 = await curl(socks.info.port as number, `http://127.0.0.1:${http.port}/y`, again);
    const newStreamMs = performance.timeOrigin + performance.now() - killedAt;
    expect(r2.code).toBe(0);
    expect(await fileSha(again)).toBe(http.sha256);
    process.stderr.write(
      `mesh kill -9 exit: exit:lost after ${((lost.at as number) - killedAt).toFixed(1)} ms, a new stream done ${newStreamMs.toFixed(0)} ms after the kill\n`,
    );
  });

  it('a relay that flips a bit: detected, torn down, its reputation lowered on disk; curl still gets the body', async () => {
    const exitDir = join(root, 'relay-exit');
    const guardDir = join(root, 'relay-guard');
    const clientDir = join(root, 'client2');
    await initDirs([exitDir, guardDir, clientDir]);
    const exit = await startMmogit([
      'mesh',
      'relay',
      '--no-tor',
      '--listen',
      '127.0.0.1:0',
      '--exit-to',
      `127.0.0.1:${http.port}`,
      '--config-dir',
      exitDir,
    ]);
    const guard = await startMmogit([
      'mesh',
      'relay',
      '--no-tor',
      '--listen',
      '127.0.0.1:0',
      '--config-dir',
      guardDir,
    ]);
    const bad = await startMmogit([], { script: TAMPER });
    const client = await startMmogit([
      'mesh',
      'socks',
      '--port',
      '0',
      '--config-dir',
      clientDir,
      ...[guard, bad, exit].flatMap((r) => ['--relay', String(r.info.relay)]),
    ]);
    const out = join(root, 'tampered.bin');
    const r = await curl(client.info.port as number, `http://127.0.0.1:${http.port}/z`, out);
    expect(r.code, tail(client)).toBe(0);
    expect(await fileSha(out)).toBe(http.sha256);
    const t = await client.waitEvent((e) => e.event === 'tampering', 5_000);
    expect(t.relays).toContain(bad.info.onion);
    const failed = await client.waitEvent((e) => e.event === 'circuit:failed', 5_000);
    expect(failed.error).toMatchObject({ code: 'ERR_BAD_FRAME', details: { reason: 'tampered' } });
    const rep = JSON.parse(await readFile(join(clientDir, 'mesh', 'reputation.json'), 'utf8'));
    expect(rep.relays[bad.info.onion as string].tampered).toBeGreaterThanOrEqual(1);
  });
});
