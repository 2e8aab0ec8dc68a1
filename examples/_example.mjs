// Shared plumbing for the examples: where the private Tor network comes from, temporary directories, a deadline,
// Ctrl-C, and turning a failure into one line on stderr plus a non-zero exit code. The interesting parts are in
// the examples themselves; read one of those first.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MmogitError } from 'mmogit';
import { loadNetwork, testnetDown, testnetUp } from 'mmogit/tor';

/** How long an example may run when it also has to bring up its own network (15–40 s of that). */
const DEADLINE_MS = 150_000;

const t0 = Date.now();

/** A progress line on stderr (stdout is kept for the summary). */
export function step(line) {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
}

/** `abcdefghij…onion`: onion addresses are 62 characters, too long for a progress line. */
export function short(onion) {
  return `${onion.slice(0, 10)}…onion`;
}

/**
 * Runs `main({ network, tmp, signal, args })` and exits with its outcome.
 *
 * - `network`: the private Tor network's directory: `--network DIR`, else `$MMOGIT_TOR_NETWORK`, else one
 *   brought up here (in `tmp`) with `testnetUp` and torn down again at the end.
 * - `tmp`: a fresh temporary directory for the agents' config dirs; removed at the end.
 * - `signal`: aborted on Ctrl-C or when the deadline passes; pass it to every network call.
 * - `args`: the parsed command line (`extraOptions` adds options, as `util.parseArgs` describes them).
 *
 * `main` returns the summary lines printed on stdout. Any error becomes `<name>: <message> [<code>]` on stderr
 * and exit code 1.
 */
export async function runExample(name, main, extraOptions = {}) {
  const abort = new AbortController();
  const onSignal = () => abort.abort(new MmogitError('ERR_ABORTED', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const timer = setTimeout(
    () => abort.abort(new MmogitError('ERR_TIMEOUT', `did not finish in ${DEADLINE_MS / 1000} s`)),
    DEADLINE_MS,
  );
  let tmp;
  let ownNetwork;
  try {
    const { values: args } = parseArgs({
      options: { network: { type: 'string' }, ...extraOptions },
      strict: true,
    });
    tmp = await mkdtemp(join(tmpdir(), `mmogit-example-${name}-`));
    let network = args.network ?? process.env.MMOGIT_TOR_NETWORK;
    if (network) {
      await loadNetwork(network); // fails early, with a clear message, when the dir holds no network
      step(`using the private Tor network in ${network}`);
    } else {
      ownNetwork = join(tmp, 'network');
      step('no network given: starting a private Tor network on 127.0.0.1 (takes 15–40 s)…');
      // ownerPid: if this process is killed, the network's tors exit on their own (~13 s later).
      await testnetUp({ dir: ownNetwork, ownerPid: process.pid, signal: abort.signal });
      network = ownNetwork;
      step('network up');
    }
    const lines = await main({ network, tmp, signal: abort.signal, args });
    process.stdout.write(`${lines.join('\n')}\n`);
    process.exitCode = 0;
  } catch (e) {
    const reason = abort.signal.aborted ? abort.signal.reason : e;
    const message = reason instanceof Error ? reason.message : String(reason);
    const code = reason instanceof MmogitError ? ` [${reason.code}]` : '';
    process.stderr.write(`${name}: ${message}${code}\n`);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    if (ownNetwork) await testnetDown({ dir: ownNetwork }).catch(() => {});
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // libp2p may keep a timer alive for a moment after stop(); never let an example hang on one.
    setTimeout(() => process.exit(), 3_000).unref();
  }
}

/** Waits until `check()` is true (polling), or fails with `what` after `ms`. */
export async function waitFor(check, what, { ms = 30_000, signal } = {}) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (signal?.aborted) throw signal.reason;
    if (Date.now() > deadline) throw new MmogitError('ERR_TIMEOUT', `${what}: nothing after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
