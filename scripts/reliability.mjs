#!/usr/bin/env node
// The long reliability runs, kept out of `npm test` (which runs each with a small bounded size):
//   npm run reliability -- <part> [size]
// Each part is one vitest file with its size in an environment variable; docs/reliability.md gives the figures
// these runs printed. Tor parts reuse a running private network (MMOGIT_TEST_NETWORK=DIR) or start their own.
import { spawnSync } from 'node:child_process';

const PARTS = {
  kill: {
    what: 'kill -9 mid-write, mid-sync and mid-message-receive (size: runs per scenario, default 100)',
    env: 'MMOGIT_KILL_RUNS',
    size: '100',
    files: ['test/reliability/kill-write.test.ts', 'test/reliability/kill.tor.test.ts'],
  },
  'kill-receive': {
    what: 'kill -9 mid-message-receive only (size: kills, default 100; a kill takes 30-140 s on 2 cores)',
    env: 'MMOGIT_KILL_RUNS',
    size: '100',
    files: ['test/reliability/kill.tor.test.ts'],
    args: ['-t', 'mid-message-receive'],
  },
  'kill-file': {
    what: 'kill -9 of the receiving daemon mid-file, 4 MiB each, resumed (size: runs, default 100)',
    env: 'MMOGIT_KILL_FILE_RUNS',
    size: '100',
    files: ['test/reliability/kill-file.tor.test.ts'],
    args: ['-t', 'receiving daemon killed'],
  },
  'kill-file-send': {
    what: 'kill -9 of the sending daemon mid-file, 16 MiB each, resumed from its outbox under the same id (size: runs, default 100)',
    env: 'MMOGIT_KILL_FILE_RUNS',
    size: '100',
    files: ['test/reliability/kill-file.tor.test.ts'],
    args: ['-t', 'sending daemon killed'],
  },
  load: {
    what: 'agents × messages on the private network (size: messages per agent, default 1000; MMOGIT_LOAD_AGENTS, default 20)',
    env: 'MMOGIT_LOAD_MESSAGES',
    size: '1000',
    extra: { MMOGIT_LOAD_AGENTS: process.env.MMOGIT_LOAD_AGENTS ?? '20' },
    files: ['test/reliability/load.tor.test.ts'],
  },
  exhaustion: {
    what: 'hostile connections to the onion listener, on loopback (size: connections and flood attackers, default 1000)',
    env: 'MMOGIT_EXHAUSTION_CONNECTIONS',
    size: '1000',
    files: ['test/reliability/exhaustion.test.ts'],
  },
  'exhaustion-tor': {
    what: 'the sustained flood through the private Tor network (size: attackers, default 300)',
    env: 'MMOGIT_EXHAUSTION_CONNECTIONS',
    size: '300',
    extra: { MMOGIT_EXHAUSTION_TOR: '1' },
    files: ['test/reliability/exhaustion.tor.test.ts'],
  },
  sybil: {
    what: 'throw-away adverts beside 3 genuine agents on a loopback DHT (size: Sybils, default 1000)',
    env: 'MMOGIT_SYBILS',
    size: '1000',
    files: ['test/reliability/sybil.test.ts'],
  },
};

const [part, size] = process.argv.slice(2);
const spec = PARTS[part];
if (spec === undefined) {
  process.stderr.write(
    `usage: npm run reliability -- <part> [size]\n${Object.entries(PARTS)
      .map(([name, p]) => `  ${name}: ${p.what}`)
      .join('\n')}\n`,
  );
  process.exit(2);
}
if (size !== undefined && !/^[1-9][0-9]{0,6}$/.test(size)) {
  process.stderr.write(`size must be a positive integer, got ${JSON.stringify(size)}\n`);
  process.exit(2);
}
const r = spawnSync('npx', ['vitest', 'run', ...spec.files, ...(spec.args ?? [])], {
  stdio: 'inherit',
  env: { ...process.env, ...spec.extra, [spec.env]: size ?? spec.size },
});
process.exit(r.status ?? 1);
