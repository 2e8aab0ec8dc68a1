#!/usr/bin/env node
// First-command setup for `npm test`, `npm run demo` and `npm run bench` on a fresh machine:
// installs the npm dependencies when they are missing and, with `--tor`, finds tor or installs it
// (root + apt-get), else stops with one line naming the command to run. Uses only Node built-ins,
// because it runs before `node_modules` exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wantTor = process.argv.includes('--tor');

function fail(line) {
  process.stderr.write(`mmogit setup: ${line}\n`);
  process.exit(1);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19))
  fail(`Node ${process.versions.node} is too old: install Node 20.19 or newer`);

// Dependencies: a marker every install leaves behind, plus the lockfile's own copy of the tree.
const installed =
  existsSync(join(root, 'node_modules', '.package-lock.json')) &&
  existsSync(join(root, 'node_modules', 'libp2p', 'package.json'));
if (!installed) {
  process.stderr.write('mmogit setup: installing npm dependencies (npm ci)…\n');
  const npm = (args) =>
    spawnSync('npm', [...args, '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  // `npm ci` can refuse our lockfile because npm omits other platforms' optional packages from it
  // (npm/cli#8320); `npm install` from the same lockfile installs the same versions.
  let r = existsSync(join(root, 'package-lock.json')) ? npm(['ci']) : { status: 1 };
  if (r.status !== 0) r = npm(['install']);
  if (r.status !== 0) fail('installing the npm dependencies failed: see the output above');
}

if (wantTor && !(has('tor') && has('tor-gencert'))) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get')) {
    process.stderr.write('mmogit setup: tor is missing, installing it with apt-get…\n');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-qq', 'tor', 'obfs4proxy'], { stdio: 'inherit', env });
    } catch {
      fail("could not install tor: run 'sudo apt-get install -y tor obfs4proxy'");
    }
  } else {
    fail("tor is missing: run 'sudo apt-get install -y tor obfs4proxy'");
  }
}

// Keep the check honest: the package manifest must be what we think it is.
JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
