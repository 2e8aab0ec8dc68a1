// An agent that uses a tor which is already running (the system's tor, Tor Browser's, one you manage yourself)
// instead of spawning its own. The agent talks to that tor through its control port: it authenticates (cookie
// file, SAFECOOKIE, or a password), publishes its onion service on it, and dials peers through its SOCKS port.
// When the agent stops it removes its onion service and leaves the tor running: the tor is not the agent's.
//
// To stand in for "your" tor, this example starts a plain `tor` process with a small torrc, as you would write
// one yourself. The two lines that matter for mmogit are a ControlPort and a way to authenticate on it:
//
//   ControlPort 9051
//   CookieAuthentication 1                  # or: HashedControlPassword <output of `tor --hash-password …`>
//
// A second agent, eve, with her own tor, then reaches the attached agent's onion and sends it a message.
//
//   node examples/attach-existing-tor.mjs                       # cookie authentication
//   node examples/attach-existing-tor.mjs --auth password       # password authentication
//   MMOGIT_TOR_NETWORK=/tmp/net node examples/attach-existing-tor.mjs
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, MmogitError } from 'mmogit';
import { loadNetwork } from 'mmogit/tor';
import { runExample, short, step, waitFor } from './_example.mjs';

await runExample(
  'attach-existing-tor',
  async ({ network, tmp, signal, args }) => {
    const auth = args.auth ?? 'cookie';
    if (auth !== 'cookie' && auth !== 'password')
      throw new Error(`--auth must be cookie or password, not ${auth}`);
    const agents = [];
    let userTor;
    try {
      // 1. "Your" tor: a torrc with a control port, started as an ordinary process.
      const password = auth === 'password' ? randomBytes(12).toString('hex') : undefined;
      userTor = await startUserTor(join(tmp, 'user-tor'), network, password, signal);
      step(`a tor is running (pid ${userTor.pid}), control port ${userTor.control}, ${auth} authentication`);

      // 2. dora attaches to it: `torControl` (host:port or a control socket path) switches from spawning a tor to
      //    attaching. With a password, pass `torPassword`; otherwise the agent reads the cookie file tor names.
      const { agent: dora } = await Agent.init({ configDir: join(tmp, 'dora') });
      agents.push(dora);
      const received = [];
      dora.on('message', (m) => received.push(m));
      await dora.start({
        network,
        torControl: userTor.control,
        ...(password ? { torPassword: password } : {}),
        signal,
      });
      const mode = dora.net().status().torMode;
      step(`dora (${short(dora.address)}) started in ${mode} mode`);

      // 3. eve, with a tor of her own, reaches dora's onion service, which lives in the attached tor.
      const { agent: eve } = await Agent.init({ configDir: join(tmp, 'eve') });
      agents.push(eve);
      await eve.start({ network, signal });
      const link = await eve.connect(dora.address, { signal });
      const text = 'hello dora, your onion is served by a tor you did not start';
      const sent = await eve.send(dora.address, text, { signal });
      await waitFor(() => received.length > 0, 'dora waiting for eve’s message', { signal });
      if (sent.status !== 'delivered') throw new Error(`eve's message was ${sent.status}, not delivered`);

      // 4. Stopping dora leaves the tor she attached to running.
      await dora.stop();
      const stillRunning = userTor.running();
      if (!stillRunning) throw new Error('the tor dora attached to exited when dora stopped');
      return [
        `tor: pid ${userTor.pid}, control port ${userTor.control}, ${auth} authentication`,
        `dora ${dora.address} (tor mode: ${mode})`,
        `eve reached dora's onion over ${link.transport} (${link.suite}) in ${Math.round(link.rttMs)} ms`,
        `dora received from eve: "${received[0].text}" (signature ${received[0].verified ? 'verified' : 'BAD'})`,
        `after dora stopped, the tor is still running: ${stillRunning ? 'yes' : 'no'}`,
      ];
    } finally {
      step('stopping the agents and the tor…');
      await Promise.all(agents.map((a) => a.close().catch(() => {})));
      // The example started this tor, so it stops it; an agent attached to your own tor never does.
      await userTor?.stop();
    }
  },
  { auth: { type: 'string' } },
);

/**
 * Starts a plain tor joined to the private network, with `ControlPort auto` (the port tor picked is written to a
 * file) and cookie or password authentication. Resolves once the control port is listening.
 */
async function startUserTor(dataDir, networkDir, password, signal) {
  await mkdir(dataDir, { recursive: true, mode: 0o700 }); // tor refuses a DataDirectory others can read
  const net = await loadNetwork(networkDir);
  const portFile = join(dataDir, 'control-port');
  const torrc = [
    `DataDirectory ${dataDir}`,
    'SocksPort auto',
    'ControlPort auto',
    `ControlPortWriteToFile ${portFile}`,
    ...(password
      ? ['CookieAuthentication 0', `HashedControlPassword ${await hashPassword(password)}`]
      : ['CookieAuthentication 1']),
    `Log notice file ${join(dataDir, 'notice.log')}`,
    // If this example is killed, tor exits by itself shortly after (control-spec §3.23).
    `__OwningControllerProcess ${process.pid}`,
    // The private network's lines (TestingTorNetwork, its DirAuthority lines, …); a tor on the real Tor network
    // needs none of these.
    ...net.clientTorrc,
  ];
  await writeFile(join(dataDir, 'torrc'), `${torrc.join('\n')}\n`);

  const child = spawn('tor', ['-f', join(dataDir, 'torrc')], { stdio: 'ignore' });
  let exited = false;
  const gone = new Promise((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (e) => {
      exited = true;
      resolve(e);
    });
  });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([
      gone.then(() => true),
      new Promise((r) => setTimeout(r, 5_000, false)),
    ]);
    if (!killed) {
      child.kill('SIGKILL');
      await gone;
    }
  };
  try {
    let control = '';
    await waitFor(
      async () => {
        if (exited) throw new MmogitError('ERR_TOR_START_FAILED', 'tor exited at once: is it installed?');
        const text = await readFile(portFile, 'utf8').catch(() => '');
        control = /PORT=(\S+)/.exec(text)?.[1] ?? ''; // "PORT=127.0.0.1:46319"
        return control !== '';
      },
      'tor writing its control port file',
      { ms: 20_000, signal },
    );
    return { pid: child.pid, control, running: () => !exited, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `tor --hash-password` prints the salted hash (`16:…`) that HashedControlPassword takes. */
async function hashPassword(password) {
  const { stdout } = await promisify(execFile)('tor', ['--quiet', '--hash-password', password]);
  const hash = /^16:[0-9A-F]+$/m.exec(stdout)?.[0];
  if (!hash) throw new Error('tor --hash-password gave no hash');
  return hash;
}
