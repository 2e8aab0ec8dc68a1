// The published package, not the checkout: `npm pack` the built tree, install the tarball into an empty
// directory as a user would (`npm install <tarball>`: from the local npm cache, the npm registry for anything the
// cache lacks), and use it there: the `mmogit` binary, `import { Agent } from 'mmogit'`, and the one dependency
// whose declared Node range is narrower than ours (p-retry, pulled by libp2p; docs/decisions.md). Runs on
// whichever Node runs vitest (.ci/run runs the suite on two Node lines), npm included: npm's own script is run
// with this process's Node.
import { accessSync, constants, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeRun, runNode } from '../helpers/run-node.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };
const nodeMajor = Number(process.versions.node.split('.')[0]);

/**
 * Packages allowed to warn EBADENGINE on install, with the Node range they declare: every entry is a decision
 * in docs/decisions.md ("Node lines"). Any other engine warning fails this test.
 */
const KNOWN_ENGINE_WARNINGS: Record<string, string> = { 'p-retry': '>=22' };

/** npm's own entry script (`npm` on PATH is a link to it), so it runs on this process's Node. */
function npmCli(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'npm');
    try {
      accessSync(candidate, constants.X_OK);
      return realpathSync(candidate);
    } catch {}
  }
  throw new Error('npm is not on PATH');
}

// A child npm must not inherit the npm_* variables of an enclosing `npm test` (they name this checkout as the
// project and its config), or it would install into the repository instead of the empty directory.
const cleanEnv = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.toLowerCase().startsWith('npm_'))
    .map((k) => [k, undefined]),
) as NodeJS.ProcessEnv;

async function npm(args: string[], cwd: string, timeoutMs: number): Promise<NodeRun> {
  const r = await runNode(npmCli(), [...args, '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd,
    env: cleanEnv,
    timeoutMs,
  });
  if (r.timedOut || r.exitCode !== 0) {
    throw new Error(
      `npm ${args.join(' ')} failed (exit ${r.exitCode}, timed out: ${r.timedOut})\n${r.stderr}`,
    );
  }
  return r;
}

let root: string;
let app: string;
let installLog: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmogit-packed-'));
  app = join(root, 'app');
  await mkdir(app);
  const packed = await npm(['pack', '--json', '--pack-destination', root], repo, 120_000);
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  await writeFile(
    join(app, 'package.json'),
    JSON.stringify({ name: 'packed-check', version: '1.0.0', private: true, type: 'module' }),
  );
  const installed = await npm(['install', '--prefer-offline', join(root, filename)], app, 240_000);
  installLog = installed.stdout + installed.stderr;
}, 400_000);
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const bin = () => join(app, 'node_modules', 'mmogit', 'bin', 'mmogit.js');

describe(`the packed ${pkg.name}@${pkg.version}, installed into an empty directory on Node ${process.versions.node}`, () => {
  it('installs with no engine warning beyond the documented ones (none on Node 22+)', () => {
    const warned = [
      ...installLog.matchAll(
        /package: '(@?[^@']+)@[^']+',\s*npm warn EBADENGINE\s+required: \{ node: '([^']+)'/g,
      ),
    ].map((m) => [m[1] as string, m[2] as string] as const);
    expect(installLog.split('Unsupported engine').length - 1).toBe(warned.length); // the pattern saw each one
    for (const [name, range] of warned) expect(KNOWN_ENGINE_WARNINGS[name]).toBe(range);
    if (nodeMajor >= 22) expect(warned).toEqual([]);
  });

  it('runs `mmogit init` and `mmogit tor address` from the installed package', async () => {
    const home = join(root, 'home');
    const init = await runNode(bin(), ['init', '--json', '--config-dir', home], {
      cwd: app,
      timeoutMs: 60_000,
    });
    expect(init.exitCode, init.stderr).toBe(0);
    const created = JSON.parse(init.stdout) as { onion: string; pubkey: string; mnemonic: string };
    expect(created.onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(created.mnemonic.split(' ')).toHaveLength(24);
    const address = await runNode(bin(), ['tor', 'address', '--json', '--config-dir', home], {
      cwd: app,
      timeoutMs: 30_000,
    });
    expect(address.exitCode, address.stderr).toBe(0);
    expect(JSON.parse(address.stdout)).toEqual({ onion: created.onion, pubkey: created.pubkey });
  });

  it("`import { Agent } from 'mmogit'` resolves to the installed package and opens that identity", async () => {
    const script = join(app, 'check.mjs');
    await writeFile(
      script,
      [
        "import { Agent } from 'mmogit';",
        "import { AgentKey } from 'mmogit/identity';",
        'const agent = await Agent.open({ configDir: process.argv[2] });',
        "const resolved = import.meta.resolve('mmogit');",
        'console.log(JSON.stringify({ onion: agent.address, resolved, keyClass: typeof AgentKey.fromMnemonic }));',
      ].join('\n'),
    );
    const home = join(root, 'home');
    const r = await runNode(script, [home], { cwd: app, timeoutMs: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { onion: string; resolved: string; keyClass: string };
    const address = JSON.parse(
      (await runNode(bin(), ['tor', 'address', '--json', '--config-dir', home], { timeoutMs: 30_000 }))
        .stdout,
    ) as { onion: string };
    expect(out.onion).toBe(address.onion);
    expect(fileURLToPath(out.resolved).startsWith(join(app, 'node_modules', 'mmogit'))).toBe(true);
    expect(out.keyClass).toBe('function');
  });

  it('runs p-retry as libp2p resolves it (retries, then stops on abort) on this Node', async () => {
    const script = join(app, 'p-retry.mjs');
    await writeFile(
      script,
      [
        "import { readFileSync } from 'node:fs';",
        "import { createRequire } from 'node:module';",
        "import { dirname, join } from 'node:path';",
        "import { pathToFileURL } from 'node:url';",
        "const fromLibp2p = createRequire(new URL('./node_modules/libp2p/package.json', import.meta.url));",
        "const entry = fromLibp2p.resolve('p-retry');",
        'const { default: pRetry } = await import(pathToFileURL(entry).href);',
        "const { version } = JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8'));",
        'let attempts = 0;',
        "const value = await pRetry(async () => { if (++attempts < 3) throw new Error('not yet'); return 'ok'; },",
        '  { retries: 5, minTimeout: 1, factor: 1 });',
        'const controller = new AbortController();',
        'let aborted = 0;',
        'const stopped = await pRetry(async () => { aborted++; controller.abort(new Error("stop")); throw new Error("fail"); },',
        '  { retries: 5, minTimeout: 1, signal: controller.signal }).then(() => "resolved", (e) => e.message);',
        'console.log(JSON.stringify({ version, value, attempts, stopped, aborted }));',
      ].join('\n'),
    );
    const r = await runNode(script, [], { cwd: app, timeoutMs: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ value: 'ok', attempts: 3, stopped: 'stop', aborted: 1 });
    expect(out.version).toMatch(/^8\./); // libp2p 3.3 asks for ^8; a change here is a decision to revisit
  });

  it('ships no native addon: nothing in the installed tree is built for one Node ABI', () => {
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.node') || e.name === 'binding.gyp') found.push(p);
      }
    };
    walk(join(app, 'node_modules'));
    expect(found).toEqual([]);
  });
});
