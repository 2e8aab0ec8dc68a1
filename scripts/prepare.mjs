#!/usr/bin/env node
// First-command setup for `npm test`, `npm run demo`, `npm run bench` and .ci/run on a fresh machine: checks the
// Node line, installs the npm dependencies when they are missing and, with `--system-tools` (alias `--tor`),
// finds the system tools the tests and the demo run — or installs the missing ones with one apt-get call (root +
// apt-get), else stops with one line naming the command. Uses only Node built-ins, because it runs before
// `node_modules` exists, and spawns nothing when everything is present (it runs before every `npm test`).
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wantTools = process.argv.includes('--system-tools') || process.argv.includes('--tor');

/**
 * Each command the tests or the demo run, and the Debian package that brings it: tor and tor-gencert (the
 * private network's authorities), obfs4proxy (the bridge tests), socat and curl (clients we did not write),
 * promtool (`promtool check metrics` on our Prometheus output), strace (the leaks test traces every connect()).
 */
const TOOLS = [
  ['tor', 'tor'],
  ['tor-gencert', 'tor'],
  ['obfs4proxy', 'obfs4proxy'],
  ['socat', 'socat'],
  ['curl', 'curl'],
  ['promtool', 'prometheus'],
  ['strace', 'strace'],
];

function fail(line) {
  process.stderr.write(`mmogit setup: ${line}\n`);
  process.exit(1);
}

/**
 * Whether `command` is an executable on PATH, or in /usr/sbin and /usr/bin as src/tor/torrc.ts also looks (Debian
 * keeps tor in /usr/sbin, not on every user's PATH). A lookup, not a spawn: this runs before every test run.
 */
function onPath(command) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

// The Node lines of package.json's `engines` (^20.19.0 || ^22.12.0 || >=24; docs/decisions.md, "Node lines").
const [major, minor] = process.versions.node.split('.').map(Number);
const supported = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 24;
if (!supported)
  fail(`Node ${process.versions.node} is not supported: install Node 24 or 22.12+ (20.19+ still works)`);

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

if (wantTools) {
  const missing = TOOLS.filter(([command]) => !onPath(command));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))];
    const names = missing.map(([command]) => command).join(', ');
    const line = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!(isRoot && onPath('apt-get'))) fail(`${names} missing: run 'sudo ${line}'`);
    process.stderr.write(`mmogit setup: ${names} missing, installing ${packages.join(' ')} with apt-get…\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env,
      });
    } catch {
      fail(`could not install ${packages.join(' ')}: run '${line}'`);
    }
    const still = TOOLS.filter(([command]) => !onPath(command)).map(([command]) => command);
    if (still.length > 0) fail(`${still.join(', ')} still missing after apt-get: run '${line}'`);
  }
}

// Keep the check honest: the package manifest must be what we think it is.
JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
