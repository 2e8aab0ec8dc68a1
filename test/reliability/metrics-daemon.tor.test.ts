// `mmogit tor start --metrics`: the real daemon serves Prometheus metrics that curl scrapes and promtool
// passes, `tor status` shows the endpoint, tor's state and the last self-probe (human and --json), and bad
// addresses are usage errors before anything starts.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../cli/exit-codes.js';
import type { SupervisorStatus } from '../../src/agent/supervisor.js';
import { runCli } from '../helpers/cli.js';
import { liveProcesses } from '../helpers/processes.js';
import { testNetwork } from '../helpers/tor.js';
import { until } from './_helpers.js';

const run = promisify(execFile);
let root: string;
let network: string;
const home = () => join(root, 'm');

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-metricsd-'));
  expect((await runCli(['init', '--json', '--config-dir', home()])).exitCode).toBe(0);
}, 60_000);

afterAll(async () => {
  await runCli(['tor', 'stop', '--config-dir', home()]).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

describe('tor start --metrics', () => {
  it('refuses a wildcard or a host name before starting anything', async () => {
    for (const bad of ['0.0.0.0:9464', 'metrics.example:9464', '127.0.0.1:99999']) {
      const r = await runCli([
        'tor',
        'start',
        '--network',
        network,
        '--metrics',
        bad,
        '--config-dir',
        home(),
      ]);
      expect(r.exitCode, r.stderr).toBe(EXIT_CODES.usage);
      expect(r.stderr).toContain('ERR_INVALID_ARGUMENT');
    }
    expect(liveProcesses(home())).toEqual([]);
  });

  it('serves metrics that curl scrapes and promtool passes; status shows the endpoint and the probe', async () => {
    const started = await runCli(
      ['tor', 'start', '--network', network, '--metrics', '127.0.0.1:0', '--json', '--config-dir', home()],
      { timeoutMs: 150_000 },
    );
    expect(started.exitCode, started.stderr).toBe(0);
    const url = started.json<{ metrics: string }>().metrics;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const { stdout: text } = await run('curl', ['-sf', '--max-time', '10', url]);
    expect(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })).toBe('');
    expect(text).toContain('mmogit_tor_bootstrap_ratio 1');
    expect(text).toContain('mmogit_tor_state{state="up"} 1');
    expect(text).toContain('mmogit_outbox_messages 0');
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toContain('# TYPE mmogit_mesh_circuits_built_total counter');

    // The first self-probe runs about 10 s after start.
    const status = await until(
      async () => {
        const s = (await runCli(['tor', 'status', '--json', '--config-dir', home()])).json<{
          metrics: string;
          health: SupervisorStatus;
        }>();
        return s.health.lastProbe && s;
      },
      60_000,
      'the first self-probe',
      1_000,
    );
    expect(status.metrics).toBe(url);
    expect(status.health.state).toBe('up');
    expect(status.health.lastProbe).toMatchObject({ ok: true });
    const human = await runCli(['tor', 'status', '--config-dir', home()]);
    expect(human.stdout).toMatch(/^tor: +up since /m);
    expect(human.stdout).toMatch(/^probe: +reachable, [\d.]+ s, at \d{4}-/m);
    expect(human.stdout).toContain(`metrics:   ${url}`);
    const after = (await run('curl', ['-sf', '--max-time', '10', url])).stdout;
    expect(after).toMatch(/^mmogit_onion_probes_total\{result="ok"\} [1-9]/m);

    expect(
      (await runCli(['tor', 'stop', '--json', '--config-dir', home()], { timeoutMs: 60_000 })).exitCode,
    ).toBe(0);
    // The endpoint went with the daemon.
    await expect(run('curl', ['-sf', '--max-time', '5', url])).rejects.toBeTruthy();
  }, 240_000);
});
