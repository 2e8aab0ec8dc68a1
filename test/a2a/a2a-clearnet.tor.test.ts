// A clearnet A2A URL under the tor-only policy goes through tor too (issue: "a clearnet URL goes through tor, or
// is refused; never a direct connection"). The target is an HTTP server on 127.0.0.1 that counts connections; the
// tor is a real one whose SocksPort is open but which builds no circuit (test/tor/control/_tor.ts, loopback
// mode). tor's STREAM event shows the request reached it, the server shows nothing came straight to it, and the
// call ends in a typed error.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchA2aCard } from '../../src/a2a/client.js';
import { MmogitError } from '../../src/errors.js';
import { type StreamEvent, TorController } from '../../src/tor/control/index.js';
import { startTestTor, type TestTor } from '../tor/control/_tor.js';

let tor: TestTor;
let control: TorController;
let socksPort: number;
let server: Server;
let direct = 0;

beforeAll(async () => {
  tor = await startTestTor({ mode: 'loopback' });
  control = await TorController.connect(tor.control);
  await control.authenticate();
  const [listener] = await control.socksListeners();
  socksPort = listener?.port as number;
  server = createServer((_req, res) => res.end('{}'));
  server.on('connection', () => direct++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
}, 120_000);

afterAll(async () => {
  server?.close();
  await control?.close();
  await tor?.stop();
});

describe('A2A to a clearnet URL', () => {
  it('goes to tor, never straight to the host, and fails typed when tor cannot reach it', async () => {
    const port = (server.address() as AddressInfo).port;
    const ac = new AbortController();
    const streams: StreamEvent[] = [];
    const watching = (async () => {
      for await (const e of control.events(ac.signal)) if (e.type === 'STREAM') streams.push(e);
    })();
    await control.setEvents(['STREAM']);
    const err = await fetchA2aCard(`http://127.0.0.1:${port}`, { socksPort, timeoutMs: 5_000 }).catch(
      (e: unknown) => e,
    );
    ac.abort();
    await watching;
    await control.setEvents([]);
    expect(err).toBeInstanceOf(MmogitError);
    expect(['ERR_PEER_UNREACHABLE', 'ERR_SOCKS', 'ERR_TIMEOUT']).toContain((err as MmogitError).code);
    expect(streams.map((s) => s.target)).toContain(`127.0.0.1:${port}`);
    expect(direct).toBe(0);
  }, 60_000);
});
