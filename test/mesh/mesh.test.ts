import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayInfo } from '../../src/mesh/circuit.js';
import { Mesh } from '../../src/mesh/mesh.js';
import type { MeshStream } from '../../src/mesh/streams.js';
import { patternBytes, sha256, sinkSource, startRelays } from './_helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP forwarder on 127.0.0.1 to `port`; `accepted` holds its client sockets in the order they came. */
async function forwarder(port: number): Promise<{ port: number; accepted: Socket[]; close: () => void }> {
  const accepted: Socket[] = [];
  const server = createServer((client) => {
    accepted.push(client);
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) s.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    close: () => {
      for (const s of accepted) s.destroy();
      server.close();
    },
  };
}

async function readAll(s: MeshStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  await once(s, 'end');
  return Buffer.concat(parts);
}

describe('mesh over in-process relays', () => {
  it('carries a stream both ways through 3 hops, byte-identical', async () => {
    const src = await sinkSource(3_000_000);
    cleanups.push(() => void src.server.close());
    const net = await startRelays(5, { exitTo: [`127.0.0.1:${src.port}`] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 3 });
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    const up = patternBytes(500_000);
    stream.end(up);
    const down = await readAll(stream);
    expect(sha256(down)).toBe(src.sha256);
    await new Promise((r) => setTimeout(r, 200));
    expect(src.received).toContain(sha256(up));
    expect(mesh.circuits().map((c) => c.path.length)).toEqual([3, 3]);
  });
  it('an upload sent after the target half-closed reaches the target whole (the exit keeps its write side)', async () => {
    // The target answers and ends its side at once; the client uploads only after that end reached it, so the
    // exit's target socket has seen FIN before the first upload byte arrives (over relay onions this is the
    // common order: the upload is slower than the answer). A socket that closes its write side on FIN
    // (net's default, allowHalfOpen false) would drop the upload.
    const src = await sinkSource(10_000);
    cleanups.push(() => void src.server.close());
    const net = await startRelays(3, { exitTo: [`127.0.0.1:${src.port}`] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 3, standby: false });
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    const down = await readAll(stream);
    expect(sha256(down)).toBe(src.sha256);
    const up = patternBytes(300_000);
    stream.end(up);
    const closed = new Promise((r) => stream.once('close', r));
    // bounded: on a broken exit the upload never arrives (and the stream never closes)
    for (let i = 0; i < 200 && src.received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(src.received).toEqual([sha256(up)]);
    await closed;
  });
  it('a SOCKS client that half-closes after its request still gets the whole answer', async () => {
    // The target answers only once the request ended (as a server reading to EOF does), so the answer starts
    // after the client's FIN reached the SOCKS entry: an entry socket that closes its write side on FIN (net's
    // default) would drop all of it.
    const answer = patternBytes(200_000);
    const target = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.resume();
      s.on('end', () => s.end(answer));
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    cleanups.push(() => void target.close());
    const port = (target.address() as AddressInfo).port;
    const net = await startRelays(3, { exitTo: [`127.0.0.1:${port}`] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 3, standby: false });
    cleanups.push(() => mesh.close());
    const socks = await mesh.socks({ port: 0 });
    const c = connect({ host: '127.0.0.1', port: socks.port, allowHalfOpen: true });
    cleanups.push(() => void c.destroy());
    await once(c, 'connect');
    c.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]));
    let got = Buffer.alloc(0);
    while (got.length < 12) {
      const [d] = (await once(c, 'data')) as [Buffer];
      got = Buffer.concat([got, d]);
    }
    expect([...got.subarray(0, 4)]).toEqual([5, 0, 5, 0]);
    c.end(Buffer.from('request'));
    const parts: Buffer[] = [got.subarray(12)];
    c.on('data', (d: Buffer) => parts.push(d));
    await once(c, 'end');
    expect(sha256(Buffer.concat(parts))).toBe(sha256(answer));
  });
});

describe('mesh failures', () => {
  it('refuses a target the exits do not allow with ERR_MESH_EXIT_REFUSED', async () => {
    const net = await startRelays(4, { exitTo: ['127.0.0.1:1-2'] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 2, standby: false });
    cleanups.push(() => mesh.close());
    // policies are known, so no exit is even tried
    await expect(mesh.connect('127.0.0.1:9')).rejects.toMatchObject({
      code: 'ERR_MESH',
      details: { reason: 'no-path' },
    });
    // with unknown policies the exit answers END(exit-policy)
    const blind = new Mesh({
      relays: net.infos.map((r) => ({ ...r, exitPolicy: undefined })),
      hops: 2,
      standby: false,
    });
    cleanups.push(() => blind.close());
    await expect(blind.connect('127.0.0.1:9')).rejects.toMatchObject({ code: 'ERR_MESH_EXIT_REFUSED' });
  });

  it('a relay that flips one bit is caught and blamed; the stream heals on a new leg, byte-identical', async () => {
    const src = await sinkSource(2_000_000);
    cleanups.push(() => void src.server.close());
    const exit = await startRelays(1, { exitTo: [`127.0.0.1:${src.port}`] });
    const guard = await startRelays(1);
    cleanups.push(exit.close, guard.close);
    let n = 0;
    const bad = await startRelays(1, {
      hooks: {
        mutate: (dir, body) => {
          if (dir === 'backward' && ++n === 20) body[1000] = (body[1000] as number) ^ 0x04;
          return body;
        },
      },
    });
    cleanups.push(bad.close);
    const m = bad.infos[0] as RelayInfo;
    const mesh = new Mesh({ relays: [...guard.infos, m, ...exit.infos], hops: 3, standby: false });
    cleanups.push(() => mesh.close());
    const tampering = new Promise<{ relays: string[] }>((r) => mesh.once('tampering', r));
    const failed = new Promise<{ error: Error }>((r) => mesh.once('circuit:failed', r));
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    stream.end();
    const down = await readAll(stream);
    // the bad relay is guard or middle (the exit is fixed by policy): either way it is one of the two blamed
    expect((await tampering).relays).toContain(m.onion);
    expect((await failed).error).toMatchObject({ code: 'ERR_BAD_FRAME', details: { reason: 'tampered' } });
    expect(sha256(down)).toBe(src.sha256);
    const rep = await mesh.reputation();
    expect(rep.get(m.onion)?.tampered).toBe(1);
    expect(rep.score(m.onion)).toBeLessThan(rep.score(exit.infos[0]!.onion));
  });

  it('a relay that logs its input sees no stream byte and no end address beyond its neighbours', async () => {
    const src = await sinkSource(100_000);
    cleanups.push(() => void src.server.close());
    const logs = new Map<number, Buffer[]>();
    const begun: string[] = [];
    const relays = [];
    for (let i = 0; i < 3; i++) {
      const chunks: Buffer[] = [];
      logs.set(i, chunks);
      relays.push(
        await startRelays(1, {
          exitTo: [`127.0.0.1:${src.port}`],
          hooks: { onPayload: (p) => void chunks.push(Buffer.from(p)) },
          onBegin: (t) => void begun.push(`${i} ${t.host}:${t.port}`),
        }),
      );
    }
    for (const r of relays) cleanups.push(r.close);
    const path = relays.map((r) => r.infos[0] as import('../../src/mesh/circuit.js').RelayInfo);
    const mesh = new Mesh({ relays: path, hops: 3, standby: false });
    cleanups.push(() => mesh.close());
    // only the last allows the target, so it is the exit; guard and middle are whichever the mesh drew
    path[0]!.exitPolicy = { onionPorts: [], tcp: [] };
    path[1]!.exitPolicy = { onionPorts: [], tcp: [] };
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    const order = mesh.circuits()[0]!.path.map((o) => path.findIndex((p) => p.onion === o));
    const secret = Buffer.from('the-secret-request-line-0123456789');
    stream.end(secret);
    await readAll(stream);
    expect(order[2]).toBe(2);
    const target = Buffer.from(`127.0.0.1:${src.port}`);
    const body = patternBytes(100_000).subarray(5_000, 5_064);
    const seen = (i: number, needle: Buffer) => logs.get(i)!.some((c) => c.includes(needle));
    for (const i of [order[0]!, order[1]!]) {
      expect(seen(i, secret), `relay ${i} saw the request`).toBe(false);
      expect(seen(i, body), `relay ${i} saw the response`).toBe(false);
      expect(seen(i, target), `relay ${i} saw the target`).toBe(false);
    }
    // the guard never sees the exit's key; even the exit's input is under its own layer; the exit alone
    // learns the target, by opening that layer
    expect(seen(order[0]!, Buffer.from(path[2]!.publicKey))).toBe(false);
    expect(seen(2, target)).toBe(false);
    expect(begun).toEqual([`2 127.0.0.1:${src.port}`]);
    // guard and middle logged the whole download (cells), the exit the upload and control cells
    const logged = (i: number) => logs.get(i)!.reduce((a, c) => a + c.length, 0);
    for (const i of [order[0]!, order[1]!]) expect(logged(i)).toBeGreaterThan(100_000);
    expect(logged(2)).toBeGreaterThan(1_000);
  });
});

describe('mesh self-healing (in-process relays)', () => {
  it('a middle relay gone mid-transfer: the stream continues on the standby, same sha256', async () => {
    const src = await sinkSource(20_000_000);
    cleanups.push(() => void src.server.close());
    const net = await startRelays(6, { exitTo: [`127.0.0.1:${src.port}`] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 3 });
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    // wait for the standby
    for (let i = 0; i < 100 && mesh.circuits().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const primary = mesh.circuits().find((c) => c.role === 'primary')!;
    const middle = net.relays[net.infos.findIndex((r) => r.onion === primary.path[1])]!;
    const switched = new Promise((r) => mesh.once('circuit:switched', r));
    const parts: Buffer[] = [];
    let got = 0;
    let killed = false;
    stream.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (!killed && got > 5_000_000) {
        killed = true;
        void middle.close();
      }
    });
    stream.end();
    await once(stream, 'end');
    await switched;
    expect(killed).toBe(true);
    expect(sha256(Buffer.concat(parts))).toBe(src.sha256);
  });

  it("a standby's link to a live exit cut: the primary's stream goes on whole, and a new standby follows", async () => {
    const src = await sinkSource(20_000_000);
    cleanups.push(() => void src.server.close());
    const net = await startRelays(6, { exitTo: [`127.0.0.1:${src.port}`] });
    cleanups.push(net.close);
    // each relay behind its own loopback forwarder, so the test can cut one link between two live relays
    const fwd = await Promise.all(net.infos.map((i) => forwarder(i.tcp?.port as number)));
    cleanups.push(() => {
      for (const f of fwd) f.close();
    });
    const infos: RelayInfo[] = net.infos.map((i, k) => ({
      ...i,
      tcp: { host: '127.0.0.1', port: fwd[k]?.port as number },
    }));
    const mesh = new Mesh({ relays: infos, hops: 3 });
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    const exitOnion = mesh.circuits()[0]?.exit as string;
    const toExit = fwd[infos.findIndex((i) => i.onion === exitOnion)]!;
    // the primary is built before the standby is begun (Mesh #newSet): the exit's first link is the primary
    // middle's, its second the standby middle's (the legs' guards and middles are disjoint)
    expect(toExit.accepted).toHaveLength(1);
    for (let i = 0; i < 250 && mesh.circuits().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(
      mesh
        .circuits()
        .map((c) => c.role)
        .sort(),
    ).toEqual(['primary', 'standby']);
    expect(toExit.accepted).toHaveLength(2);
    const lost: unknown[] = [];
    mesh.on('exit:lost', (e) => lost.push(e));
    const rebuilt = new Promise((r) =>
      mesh.on('circuit:built', (e) => {
        if (e.role === 'standby') r(e);
      }),
    );
    const parts: Buffer[] = [];
    let got = 0;
    let cut = false;
    stream.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (!cut && got > 2_000_000) {
        cut = true;
        toExit.accepted[1]?.destroy();
      }
    });
    stream.end();
    await once(stream, 'end');
    expect(cut).toBe(true);
    expect(sha256(Buffer.concat(parts))).toBe(src.sha256);
    await rebuilt;
    expect(lost).toEqual([]);
  });

  it('the exit gone: open streams fail with exit-lost, a new stream uses a new exit', async () => {
    const src = await sinkSource(50_000_000);
    cleanups.push(() => void src.server.close());
    const net = await startRelays(6, { exitTo: [`127.0.0.1:${src.port}`] });
    cleanups.push(net.close);
    const mesh = new Mesh({ relays: net.infos, hops: 3 });
    cleanups.push(() => mesh.close());
    const stream = await mesh.connect(`127.0.0.1:${src.port}`);
    const exitOnion = mesh.circuits()[0]!.exit;
    const exit = net.relays[net.infos.findIndex((r) => r.onion === exitOnion)]!;
    stream.once('data', () => void exit.close());
    const err = await new Promise<Error>((resolve) => {
      stream.on('error', resolve);
      stream.resume();
    });
    expect(err).toMatchObject({ code: 'ERR_MESH', details: { reason: 'exit-lost' } });
    const again = await mesh.connect(`127.0.0.1:${src.port}`);
    expect(mesh.circuits().find((c) => c.role === 'primary')!.exit).not.toBe(exitOnion);
    again.destroy();
  });
});
