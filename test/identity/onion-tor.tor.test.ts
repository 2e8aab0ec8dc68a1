// Our v3 onion derivation (src/identity/onion.ts, rend-spec-v3 §6) against a real tor: ADD_ONION and
// HiddenServiceDir (both work with DisableNetwork 1), the recorded vectors in test/vectors/onion/, and tor's
// own address check (SOCKS reply 0xF6, "invalid onion address") as a second opinion on checksums.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentKey,
  hsPublicKeyFile,
  hsSecretKeyFile,
  isOnionAddress,
  onionFromPublicKey,
  parseOnionAddress,
} from '../../src/identity/index.js';
import { TorController } from '../../src/tor/control/index.js';
import { socksConnect } from '../../src/tor/socks.js';
import { startTestTor, type TestTor } from '../tor/control/_tor.js';

interface Vectors {
  vectors: {
    source: string;
    seedHex: string;
    publicKeyHex: string;
    expandedSecretKeyBase64: string;
    serviceId: string;
  }[];
  specExamples: { addresses: string[] };
  rejectedByTor: { addresses: string[] };
}
const file = JSON.parse(
  await readFile(join(import.meta.dirname, '../vectors/onion/tor-0.4.9.11.json'), 'utf8'),
) as Vectors;

describe('onion vectors (recorded from tor 0.4.9.11)', () => {
  it('RFC 8032 §7.1 TEST 1: seed → public key', () => {
    const key = AgentKey.fromSeed(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    );
    expect(key.publicKeyHex).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  });

  it.each(file.vectors)('$source: our public key, expanded key and onion match', (v) => {
    const key = AgentKey.fromSeed(Buffer.from(v.seedHex, 'hex'));
    expect(key.publicKeyHex).toBe(v.publicKeyHex);
    expect(key.addOnionKey()).toBe(`ED25519-V3:${v.expandedSecretKeyBase64}`);
    expect(key.serviceId).toBe(v.serviceId);
    expect(parseOnionAddress(v.serviceId).publicKey).toEqual(
      new Uint8Array(Buffer.from(v.publicKeyHex, 'hex')),
    );
  });

  it.each(file.specExamples.addresses)('rend-spec-v3 example %s parses and re-encodes', (addr) => {
    const parsed = parseOnionAddress(addr);
    expect(onionFromPublicKey(parsed.publicKey)).toBe(addr);
  });

  it.each(file.rejectedByTor.addresses)('%s, which tor rejects, is rejected by us too', (addr) => {
    expect(() => parseOnionAddress(addr)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ONION' }));
  });
});

describe('onion derivation against a live tor', () => {
  let offline: TestTor;
  let loopback: TestTor;
  let control: TorController;
  let socksPort: number;

  beforeAll(async () => {
    [offline, loopback] = await Promise.all([
      startTestTor({ mode: 'offline' }),
      startTestTor({ mode: 'loopback' }),
    ]);
    control = await TorController.connect(offline.control);
    await control.authenticate();
    const lc = await TorController.connect(loopback.control);
    await lc.authenticate();
    socksPort = (await lc.socksListeners())[0]!.port;
    await lc.close();
  });
  afterAll(async () => {
    await control?.close();
    await Promise.all([offline?.stop(), loopback?.stop()]);
  });

  it('tor gives the recorded ServiceIDs for the vector keys today', async () => {
    for (const v of file.vectors) {
      const { serviceId } = await control.addOnion({
        key: `ED25519-V3:${v.expandedSecretKeyBase64}`,
        ports: [{ virtualPort: 80, target: '127.0.0.1:9' }],
      });
      expect(serviceId).toBe(v.serviceId);
      await control.delOnion(serviceId);
    }
  });

  it('ADD_ONION with fresh random keys: ServiceID == our onion', async () => {
    for (let i = 0; i < 8; i++) {
      const key = AgentKey.random();
      const { serviceId } = await control.addOnion({
        key: key.addOnionKey(),
        ports: [{ virtualPort: 80, target: '127.0.0.1:9' }],
      });
      expect(`${serviceId}.onion`).toBe(key.onion);
      await control.delOnion(serviceId);
    }
  });

  it("HiddenServiceDir with our key files: tor's hostname == our onion", async () => {
    const { key, mnemonic } = AgentKey.generate();
    expect(mnemonic.split(' ')).toHaveLength(24);
    const dir = join(offline.dir, 'hs');
    await mkdir(dir, { mode: 0o700 });
    const seed = key.exportSeed();
    await writeFile(join(dir, 'hs_ed25519_secret_key'), hsSecretKeyFile(seed), { mode: 0o600 });
    seed.fill(0);
    await writeFile(join(dir, 'hs_ed25519_public_key'), hsPublicKeyFile(key.publicKey), { mode: 0o600 });
    await control.setConf({ HiddenServiceDir: dir, HiddenServicePort: '80 127.0.0.1:9' });
    let hostname = '';
    for (let i = 0; i < 100 && !hostname; i++) {
      hostname = await readFile(join(dir, 'hostname'), 'utf8').catch(() => '');
      if (!hostname) await new Promise((r) => setTimeout(r, 50));
    }
    expect(hostname.trim()).toBe(key.onion);
    // tor kept our key rather than making its own.
    expect(new Uint8Array(await readFile(join(dir, 'hs_ed25519_public_key')))).toEqual(
      hsPublicKeyFile(key.publicKey),
    );
    await control.resetConf(['HiddenServiceDir', 'HiddenServicePort']);
  });

  it("tor's address check agrees with ours on valid and corrupted addresses", async () => {
    const valid = [...file.specExamples.addresses, AgentKey.random().onion];
    const corrupted = [...file.rejectedByTor.addresses, ...valid].map((a, n) => {
      if (n < file.rejectedByTor.addresses.length) return a;
      const i = 10 + (a.charCodeAt(3) % 30);
      return `${a.slice(0, i)}${a[i] === 'q' ? 'r' : 'q'}${a.slice(i + 1)}`;
    });
    for (const addr of corrupted) {
      expect(isOnionAddress(addr)).toBe(false);
      await expect(
        socksConnect({ socksPort, host: addr, port: 80 }, { timeoutMs: 5000 }),
      ).rejects.toMatchObject({
        reply: 0xf6,
      });
    }
    for (const addr of valid) {
      expect(isOnionAddress(addr)).toBe(true);
      // A valid address is accepted and waits for a descriptor (this tor never gets one): no 0xF6, a timeout.
      await expect(
        socksConnect({ socksPort, host: addr, port: 80 }, { timeoutMs: 700 }),
      ).rejects.toMatchObject({
        code: 'ERR_TIMEOUT',
      });
    }
  });
});
