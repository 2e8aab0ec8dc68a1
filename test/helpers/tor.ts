// Helpers for `*.tor.test.ts`: the run's private Tor network (started by test/global-setup.ts) and one fresh
// agent tor per test on it.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';
import { type StartTorOptions, startTor, type TorHandle } from '../../src/tor/daemon.js';
import { loadNetwork, type TorNetworkInfo } from '../../src/tor/testnet.js';

/** The private network of this test run; throws (failing the test) when the global setup could not start it. */
export async function testNetwork(): Promise<TorNetworkInfo> {
  const dir = inject('mmogitTestNetwork') || process.env.MMOGIT_TEST_NETWORK || '';
  const error = inject('mmogitTestNetworkError') || process.env.MMOGIT_TEST_NETWORK_ERROR || '';
  if (!dir) throw new Error(error || 'no private Tor network: is test/global-setup.ts in vitest.config.ts?');
  return loadNetwork(dir);
}

/**
 * Starts an agent tor on the test network with its DataDirectory under `tmpDir` (`<tmpDir>/<name>`). The
 * caller stops it (`await tor.stop()`, e.g. in `afterEach`).
 */
export async function startTestTor(
  tmpDir: string,
  options: Partial<StartTorOptions> & { name?: string } = {},
): Promise<TorHandle> {
  const { name = 'tor', ...rest } = options;
  const dataDir = join(tmpDir, name);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  return startTor({ dataDir, network: await testNetwork(), timeoutMs: 60_000, ...rest });
}
