// Private-Tor-network fixture for the transport's tor tests and benchmark, until test/helpers/tor.ts lands:
// reuses the run's shared network (MMOGIT_TEST_NETWORK, a testnet dir) or starts one of its own.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentKey } from '../../src/identity/keys.js';
import { startTor, type TorHandle } from '../../src/tor/daemon.js';
import { loadNetwork, type TorNetworkInfo, testnetDown, testnetUp } from '../../src/tor/testnet.js';

export interface TorNetworkFixture {
  network: TorNetworkInfo;
  /** Starts an agent tor on the network, in a temp data dir removed by `stop`. */
  agentTor(): Promise<TorHandle>;
  stop(): Promise<void>;
}

let templatePath: string | undefined;
/**
 * The package's torrc.template without comment lines: the renderer currently treats the `{{Name}}` in the
 * template's explanatory comment as a placeholder (reported to the tor owner).
 */
async function template(): Promise<string> {
  if (templatePath) return templatePath;
  const text = await readFile(new URL('../../torrc.template', import.meta.url), 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'mmogit-torrc-'));
  templatePath = join(dir, 'torrc.template');
  await writeFile(
    templatePath,
    text
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n'),
  );
  return templatePath;
}

/** The shared network when the test run provides one, else a private 4-authority network of our own. */
export async function torNetwork(): Promise<TorNetworkFixture> {
  const dirs: string[] = [];
  const tors: TorHandle[] = [];
  const tmp = async (prefix: string) => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const shared = process.env.MMOGIT_TEST_NETWORK;
  let ownDir: string | undefined;
  let network: TorNetworkInfo;
  if (shared) {
    network = await loadNetwork(shared);
  } else {
    ownDir = await tmp('mmogit-transport-net-');
    network = await testnetUp({ dir: ownDir, ownerPid: process.pid, timeoutMs: 120_000 });
  }
  return {
    network,
    async agentTor() {
      const tor = await startTor({
        dataDir: await tmp('mmogit-transport-tor-'),
        network,
        torrcTemplate: await template(),
        restart: false,
        timeoutMs: 90_000,
      });
      tors.push(tor);
      return tor;
    },
    async stop() {
      await Promise.all(tors.map((t) => t.stop().catch(() => {})));
      if (ownDir) await testnetDown({ dir: ownDir }).catch(() => {});
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** Publishes `key`'s onion on `tor`, forwarding `virtualPort` to 127.0.0.1:`localPort` (control-spec §3.27). */
export async function publishKeyOnion(
  tor: TorHandle,
  key: AgentKey,
  virtualPort: number,
  localPort: number,
): Promise<string> {
  const { serviceId } = await tor.controller.addOnion({
    key: key.addOnionKey(),
    ports: [{ virtualPort, target: `127.0.0.1:${localPort}` }],
  });
  return serviceId;
}
