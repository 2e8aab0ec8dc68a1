// An agent program driven by `mmogit inbox --follow --json` and an on-message hook.
//
// "worker" is an agent daemon (`mmogit tor start`) with the hook of examples/hooks/on-message installed. The
// program below is its brain: it reads the daemon's messages as NDJSON from `mmogit inbox --follow --json` (no
// polling), handles each `task-proposal` (here: counting the words of the body's `text`) and answers with a
// `task-result` in the same thread (`mmogit send … --reply-to`). It saves the cursor of every message it has
// handled, so a restarted loop goes on with `--since <cursor>` and handles nothing twice. "client" is an SDK
// agent that proposes two tasks and waits for the results.
//
//   node examples/agent-loop.mjs                       # brings up its own private network
//   MMOGIT_TOR_NETWORK=/tmp/net node examples/agent-loop.mjs
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent } from 'mmogit';
import { runExample, short, step, waitFor } from './_example.mjs';

// The CLI of this package (after `npm install mmogit` it is `mmogit` on the PATH).
const MMOGIT = fileURLToPath(new URL('../bin/mmogit.js', import.meta.url));
const HOOK = fileURLToPath(new URL('./hooks/on-message', import.meta.url));

/** Runs `mmogit …args` and returns its one JSON document (throws with its error line otherwise). */
function mmogit(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MMOGIT, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(err.trim().split('\n').at(-1))),
    );
  });
}

/**
 * The agent loop: one `inbox --follow --json` process, one message per line. `handle(m)` runs for each message
 * in turn; the cursor file is written after each, so a restart resumes right after the last handled message.
 */
function follow(configDir, cursorFile, handle, signal) {
  return (async () => {
    const since = await readFile(cursorFile, 'utf8').catch(() => '');
    const args = [
      'inbox',
      '--follow',
      '--json',
      '--config-dir',
      configDir,
      ...(since ? ['--since', since.trim()] : []),
    ];
    const child = spawn(process.execPath, [MMOGIT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    signal.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      for await (const line of createInterface({ input: child.stdout })) {
        const m = JSON.parse(line);
        await handle(m);
        await writeFile(cursorFile, `${m.cursor}\n`);
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  })();
}

await runExample('agent-loop', async ({ network, tmp, signal }) => {
  const worker = join(tmp, 'worker');
  const stopLoop = new AbortController();
  let client;
  let loop;
  try {
    // 1. The worker: an identity, the hook, and its daemon on the private network.
    const { onion: workerOnion } = await mmogit(['init', '--config-dir', worker]);
    await mkdir(join(worker, 'hooks'), { recursive: true });
    await copyFile(HOOK, join(worker, 'hooks', 'on-message'));
    step(`starting the worker daemon (${short(workerOnion)})…`);
    await mmogit(['tor', 'start', '--network', network, '--config-dir', worker]);

    // 2. The worker's brain: handle task proposals from the inbox stream, answer in their thread.
    const handled = [];
    loop = follow(
      worker,
      join(tmp, 'worker.cursor'),
      async (m) => {
        if (m.type !== 'task-proposal') return;
        const words = String(m.body?.text ?? '')
          .split(/\s+/)
          .filter(Boolean).length;
        const r = await mmogit([
          'send',
          m.from,
          '--config-dir',
          worker,
          '--type',
          'task-result',
          '--reply-to',
          m.id,
          '--json-body',
          JSON.stringify({ task: m.body?.task, words }),
        ]);
        handled.push({ task: m.body?.task, words, thread: r.thread });
        step(`worker answered "${m.body?.task}" (${words} words) in thread ${r.thread.slice(0, 8)}`);
      },
      stopLoop.signal,
    );

    // 3. A client (the SDK) proposes two tasks and collects the results of its threads.
    ({ agent: client } = await Agent.init({ configDir: join(tmp, 'client') }));
    const results = [];
    client.on('message', (m) => {
      if (m.type === 'task-result') results.push(m);
    });
    step(`starting the client (${short(client.address)})…`);
    await client.start({ network, signal });
    await client.contacts.add('worker', workerOnion);
    const tasks = [
      { task: 'count-1', text: 'onion services need no server in the middle' },
      { task: 'count-2', text: 'every message is signed and acknowledged' },
    ];
    const sent = [];
    for (const body of tasks)
      sent.push(await client.send('worker', { type: 'task-proposal', body }, { signal }));
    await waitFor(() => results.length === tasks.length && handled.length === tasks.length, 'both results', {
      ms: 90_000,
      signal,
    });

    // 4. What happened: each result in the thread of its proposal, and the hook's journal on the worker.
    const journal = (await readFile(join(worker, 'hook-journal.log'), 'utf8')).trim().split('\n');
    const byThread = new Map(results.map((m) => [m.thread, m]));
    return [
      ...sent.map((s, i) => {
        const r = byThread.get(s.thread);
        return `${tasks[i].task}: ${r ? `${r.body.words} words (result ${r.verified ? 'verified' : 'BAD'}, same thread: ${r.replyTo === s.id})` : 'no result'}`;
      }),
      `worker loop handled ${handled.length} task(s)`,
      `hook journaled ${journal.filter((l) => l.includes('task-proposal')).length} task proposal(s)`,
    ];
  } finally {
    step('stopping…');
    stopLoop.abort();
    await loop?.catch(() => {});
    await client?.close().catch(() => {});
    await mmogit(['tor', 'stop', '--config-dir', worker]).catch(() => {});
  }
});
