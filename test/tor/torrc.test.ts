import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseControlTarget } from '../../src/tor/daemon.js';
import { loadNetwork } from '../../src/tor/testnet.js';
import {
  bridgeTorrcLines,
  findExecutable,
  findTransportBinaries,
  loadTorrcTemplate,
  renderAgentTorrc,
  renderTorrc,
  torrcQuote,
} from '../../src/tor/torrc.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('renderTorrc', () => {
  it('substitutes values and expands block lines', () => {
    const out = renderTorrc('# {{Comment}} stays\nSocksPort {{Port}}\n  {{Lines}}\nEnd {{Pid}}', {
      Port: '127.0.0.1:auto',
      Lines: ['A 1', 'B 2'],
      Pid: 42,
    });
    expect(out).toBe('# {{Comment}} stays\nSocksPort 127.0.0.1:auto\nA 1\nB 2\nEnd 42');
    expect(renderTorrc('X\n{{Empty}}\nY', { Empty: [] })).toBe('X\nY');
  });

  it('refuses missing values, arrays inline, and line breaks (option injection)', () => {
    expect(codeOf(() => renderTorrc('A {{Missing}}', {}))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => renderTorrc('A {{L}} B', { L: ['x'] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => renderTorrc('A {{V}}', { V: 'x\nControlPort 9051' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => renderTorrc('{{L}}', { L: ['ok', 'bad\rline'] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => torrcQuote('a\0b'))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('quotes paths so spaces, quotes and # survive', () => {
    expect(torrcQuote('/a b/#c"d\\e')).toBe('"/a b/#c\\"d\\\\e"');
  });
});

describe('renderAgentTorrc with torrc.template', () => {
  it('renders the ownership, control, SOCKS, network and bridge lines', async () => {
    const template = await loadTorrcTemplate();
    const torrc = renderAgentTorrc(template, {
      dataDir: '/data dir/tor',
      controlPortFile: '/data dir/tor/control-port',
      ownerPid: 1234,
      socksPort: 9150,
      networkLines: ['TestingTorNetwork 1', 'DirAuthority a orport=1 no-v2 v3ident=AB 127.0.0.1:2 CD'],
      bridgeLines: bridgeTorrcLines(['obfs4 192.0.2.1:443 ' + 'A'.repeat(40) + ' cert=xyz iat-mode=0'], {
        obfs4: '/usr/bin/obfs4proxy',
      }),
      extraLines: ['SafeLogging 1'],
    });
    const lines = torrc.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toContain('DataDirectory "/data dir/tor"');
    expect(lines).toContain('ControlPort 127.0.0.1:auto');
    expect(lines).toContain('ControlPortWriteToFile "/data dir/tor/control-port"');
    expect(lines).toContain('CookieAuthentication 1');
    expect(lines).toContain('SocksPort 127.0.0.1:9150 ExtendedErrors');
    expect(lines).toContain('__OwningControllerProcess 1234');
    expect(lines).toContain('TestingTorNetwork 1');
    expect(lines).toContain('UseBridges 1');
    expect(lines).toContain('ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy');
    expect(lines).toContain(`Bridge obfs4 192.0.2.1:443 ${'A'.repeat(40)} cert=xyz iat-mode=0`);
    expect(lines).toContain('SafeLogging 1');
    expect(lines.join('\n')).not.toMatch(/\{\{/);
  });

  it('refuses bad ports', async () => {
    const template = await loadTorrcTemplate();
    const base = { dataDir: '/d', controlPortFile: '/d/p', ownerPid: 1 };
    expect(codeOf(() => renderAgentTorrc(template, { ...base, socksPort: 70000 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(codeOf(() => renderAgentTorrc(template, { ...base, controlPort: 0 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('bridgeTorrcLines', () => {
  it('accepts plain and `Bridge`-prefixed lines, skips comments, needs a transport binary', () => {
    expect(bridgeTorrcLines(['Bridge 192.0.2.1:9001', '# note', ''])).toEqual([
      'UseBridges 1',
      'Bridge 192.0.2.1:9001',
    ]);
    expect(codeOf(() => bridgeTorrcLines([]))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => bridgeTorrcLines(['# only a comment']))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => bridgeTorrcLines(['snowflake 192.0.2.3:80 FP']))).toBe('ERR_TOR_NOT_FOUND');
    expect(codeOf(() => bridgeTorrcLines(['obfs4 192.0.2.1:1 FP\nControlPort 1']))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('bridge lines and transport binaries cannot inject into the torrc', () => {
  const FP = 'A'.repeat(40);
  it('refuses quotes, backslashes (tor joins a line ending in one with the next), # and control characters', () => {
    for (const bad of [
      `obfs4 192.0.2.1:443 ${FP} cert=abc\\`,
      `obfs4 192.0.2.1:443 ${FP} cert="x"`,
      `obfs4 192.0.2.1:443 ${FP} #cert=x`,
      `obfs4 192.0.2.1:443 ${FP} cert=\u0007`,
      'obfs4 192.0.2.1:443\rControlPort 1',
      'obfs4',
      'ob fs4"x 192.0.2.1:1',
    ]) {
      expect(
        codeOf(() => bridgeTorrcLines([bad], { obfs4: '/usr/bin/obfs4proxy' })),
        bad,
      ).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(
      bridgeTorrcLines([`obfs4 [2001:db8::1]:443 ${FP} cert=ab+/c== iat-mode=0`], {
        obfs4: '/usr/bin/obfs4proxy',
      }),
    ).toContain(`Bridge obfs4 [2001:db8::1]:443 ${FP} cert=ab+/c== iat-mode=0`);
  });

  it('writes only a plain absolute transport binary path into ClientTransportPlugin', () => {
    for (const bin of [
      'obfs4proxy',
      './obfs4proxy',
      '/tmp/my dir/obfs4proxy',
      '/usr/bin/obfs4proxy -x',
      '/a/../b',
      '/a/"b',
    ]) {
      expect(
        codeOf(() => bridgeTorrcLines([`obfs4 192.0.2.1:1 ${FP}`], { obfs4: bin })),
        bin,
      ).toBe('ERR_INVALID_ARGUMENT');
    }
  });

  it('any renderTorrc value ending in a backslash is refused (it would swallow the next option)', () => {
    expect(codeOf(() => renderTorrc('{{Extra}}\nSocksPort 9050\n', { Extra: ['ContactInfo x \\'] }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(codeOf(() => renderTorrc('Nickname {{N}}\nSocksPort 9050\n', { N: 'abc\\' }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  describe('binary lookup', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mmogit-pt-'));
      for (const name of ['evil', 'mmogit-test-pt']) {
        await writeFile(join(dir, name), '#!/bin/sh\nexit 0\n');
        await chmod(join(dir, name), 0o755);
      }
      await mkdir(join(dir, 'adir'));
      await chmod(join(dir, 'adir'), 0o755);
      await symlink(join(dir, 'mmogit-test-pt'), join(dir, 'link'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('never looks up a transport it does not know (a bridge line naming a program)', async () => {
      const saved = process.env.PATH;
      process.env.PATH = `${dir}:${saved}`;
      try {
        expect(await findTransportBinaries(['evil 192.0.2.1:1', 'sh 192.0.2.1:2'])).toEqual({});
      } finally {
        process.env.PATH = saved;
      }
    });

    it('skips relative PATH entries (the current directory), directories and relative names; resolves links', async () => {
      const rel = relative(process.cwd(), dir);
      expect(await findExecutable('mmogit-test-pt', rel)).toBeUndefined();
      expect(await findExecutable('mmogit-test-pt', `:.:${rel}`)).toBeUndefined();
      expect(await findExecutable(join(rel, 'mmogit-test-pt'))).toBeUndefined();
      expect(await findExecutable('adir', dir)).toBeUndefined();
      expect(await findExecutable('mmogit-test-pt', dir)).toBe(join(dir, 'mmogit-test-pt'));
      expect(await findExecutable('link', dir)).toBe(join(dir, 'mmogit-test-pt'));
    });
  });
});

describe('parseControlTarget', () => {
  it('parses host:port, [v6]:port and socket paths', () => {
    expect(parseControlTarget('127.0.0.1:9051')).toEqual({ host: '127.0.0.1', port: 9051 });
    expect(parseControlTarget('[::1]:9051')).toEqual({ host: '::1', port: 9051 });
    expect(parseControlTarget('/run/tor/control')).toEqual({ path: '/run/tor/control' });
    expect(parseControlTarget('unix:/run/tor/control')).toEqual({ path: '/run/tor/control' });
    for (const bad of ['localhost', '127.0.0.1:0', '127.0.0.1:99999', '']) {
      expect(codeOf(() => parseControlTarget(bad))).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});

describe('findExecutable', () => {
  it('finds tor (also in /usr/sbin) and reports a missing binary as undefined', async () => {
    expect(await findExecutable('tor')).toMatch(/\/tor$/);
    expect(await findExecutable('/nonexistent/tor')).toBeUndefined();
    expect(await findExecutable('mmogit-no-such-binary')).toBeUndefined();
  });
});

describe('loadNetwork', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mmogit-netcfg-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function codeFor(content: string | undefined): Promise<string | undefined> {
    if (content === undefined) await rm(join(dir, 'network.json'), { force: true });
    else await writeFile(join(dir, 'network.json'), content);
    try {
      await loadNetwork(dir);
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return undefined;
  }

  it('reads a valid file and refuses missing or malformed ones with ERR_NETWORK_CONFIG', async () => {
    const good = {
      version: 1,
      clientTorrc: ['TestingTorNetwork 1', 'DirAuthority a orport=1 no-v2 v3ident=AB 127.0.0.1:2 CD'],
      authorities: [],
      relays: [],
      bridges: ['obfs4 127.0.0.1:3 FP cert=x iat-mode=0'],
    };
    await writeFile(join(dir, 'network.json'), JSON.stringify(good));
    const net = await loadNetwork(dir);
    expect(net.dir).toBe(dir);
    expect(net.clientTorrc).toEqual(good.clientTorrc);
    expect(net.bridges).toEqual(good.bridges);
    expect(JSON.parse(await readFile(join(dir, 'network.json'), 'utf8')).version).toBe(1);

    expect(await codeFor(undefined)).toBe('ERR_NETWORK_CONFIG');
    expect(await codeFor('{not json')).toBe('ERR_NETWORK_CONFIG');
    expect(await codeFor(JSON.stringify({ ...good, version: 2 }))).toBe('ERR_NETWORK_CONFIG');
    expect(await codeFor(JSON.stringify({ ...good, clientTorrc: ['TestingTorNetwork 1'] }))).toBe(
      'ERR_NETWORK_CONFIG',
    );
    expect(
      await codeFor(JSON.stringify({ ...good, clientTorrc: [...good.clientTorrc, 'X 1\nControlPort 1'] })),
    ).toBe('ERR_NETWORK_CONFIG');
  });
});
