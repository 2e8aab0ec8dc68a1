// Global setup for the test run. The private Tor network (src/tor/testnet.ts) is started here once, only when
// a selected test file is a `*.tor.test.ts`, and shared through `inject('mmogitTestNetwork')` and the
// MMOGIT_TEST_NETWORK environment variable (set before the workers fork). Teardown stops every tor it started;
// its tors also carry `__OwningControllerProcess` = this process, so they exit if the run is killed.
//
// MMOGIT_TEST_NETWORK=<dir> set by the caller reuses a network already running there (neither started nor
// stopped here), e.g. one from `mmogit testnet up --dir <dir>` kept across runs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { testnetDown, testnetUp } from '../src/tor/testnet.js';
import { findTransportBinaries } from '../src/tor/torrc.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory of the private Tor network ('' when none was started). */
    mmogitTestNetwork: string;
    /** Why the network could not be started ('' when it was, or was not needed). */
    mmogitTestNetworkError: string;
  }
}

/** Positional arguments of `vitest [run] <filters…>`; flag values may slip in, which only widens the match. */
function cliFilters(): string[] {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  return args.filter(
    (a) => !['run', 'watch', 'dev', 'related', 'bench'].includes(a) && !a.endsWith('vitest.mjs'),
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.MMOGIT_TEST_NETWORK;
  if (given) {
    project.provide('mmogitTestNetwork', given);
    project.provide('mmogitTestNetworkError', '');
    return async () => {};
  }
  project.provide('mmogitTestNetwork', '');
  project.provide('mmogitTestNetworkError', '');
  let wanted = true;
  try {
    const { testFiles } = await project.globTestFiles(cliFilters());
    wanted = testFiles.some((f) => f.endsWith('.tor.test.ts'));
  } catch {
    wanted = true; // cannot tell: start it
  }
  if (!wanted) return async () => {};

  const dir = await mkdtemp(join(tmpdir(), 'mmogit-testnet-'));
  const t0 = Date.now();
  try {
    // One obfs4 bridge when obfs4proxy/lyrebird is installed, for the bridge tests (not in the consensus, so
    // other tests never use it).
    const bridges = (await findTransportBinaries(['obfs4 127.0.0.1:1'])).obfs4 ? 1 : 0;
    await testnetUp({ dir, bridges, ownerPid: process.pid, timeoutMs: 180_000 });
    process.env.MMOGIT_TEST_NETWORK = dir;
    project.provide('mmogitTestNetwork', dir);
    process.stderr.write(
      `mmogit: private Tor network up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${dir})\n`,
    );
  } catch (e) {
    // Unit tests still run; every *.tor.test.ts fails with this message (see test/helpers/tor.ts).
    const message = `private Tor network failed to start: ${(e as Error).message}`;
    process.env.MMOGIT_TEST_NETWORK_ERROR = message;
    project.provide('mmogitTestNetworkError', message);
  }
  return async () => {
    await testnetDown({ dir });
    await rm(dir, { recursive: true, force: true });
  };
}
