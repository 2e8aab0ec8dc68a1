// The Prometheus endpoint: address policy, what it serves and refuses, scraped by curl and linted by promtool
// (clients we did not write), registries that never collide between agents, the mesh's registry merged in.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshMetrics } from '../../src/mesh/metrics.js';
import {
  AgentMetrics,
  METRICS_MAX_CONNECTIONS,
  parseMetricsAddress,
  reasonLabel,
  serveMetrics,
} from '../../src/metrics/index.js';
import type { MetricsServer } from '../../src/metrics/server.js';

const run = promisify(execFile);
const servers: MetricsServer[] = [];
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mmogit-metrics-'));
  return () => rm(tmp, { recursive: true, force: true });
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function curl(url: string, ...args: string[]): Promise<{ code: number; body: string; type: string }> {
  const { stdout } = await run('curl', [
    '-s',
    '--max-time',
    '10',
    '-o',
    '-',
    '-w',
    '\n%{http_code} %{content_type}',
    ...args,
    url,
  ]);
  const cut = stdout.lastIndexOf('\n');
  const [code, ...type] = stdout.slice(cut + 1).split(' ');
  return { code: Number(code), body: stdout.slice(0, cut), type: type.join(' ') };
}

/** `promtool check metrics` on `text`: exit status and its complaints. */
function promtool(text: string): { status: number; output: string } {
  try {
    const output = execFileSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return { status: 0, output };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, output: `${err.stdout}${err.stderr}` };
  }
}

async function serve(registries: AgentMetrics[], extra: MeshMetrics[] = []): Promise<MetricsServer> {
  const server = await serveMetrics({
    address: parseMetricsAddress('127.0.0.1:0'),
    registries: [...registries.map((m) => m.registry), ...extra.map((m) => m.registry)],
  });
  servers.push(server);
  return server;
}

describe('--metrics address', () => {
  it('takes loopback addresses and literal interface addresses; refuses wildcards, names and bad ports', () => {
    expect(parseMetricsAddress('9464')).toEqual({ host: '127.0.0.1', port: 9464, loopback: true });
    expect(parseMetricsAddress('localhost:9464')).toEqual({ host: '127.0.0.1', port: 9464, loopback: true });
    expect(parseMetricsAddress('127.0.0.2:1')).toEqual({ host: '127.0.0.2', port: 1, loopback: true });
    expect(parseMetricsAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464, loopback: true });
    expect(parseMetricsAddress('10.1.2.3:9464')).toEqual({ host: '10.1.2.3', port: 9464, loopback: false });
    for (const bad of [
      '0.0.0.0:9464',
      '[::]:9464',
      'example.org:9464',
      'host',
      '127.0.0.1:65536',
      ':9464',
      '',
    ]) {
      expect(() => parseMetricsAddress(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
  });

  it('a taken port is ERR_PORT_IN_USE', async () => {
    const first = await serve([new AgentMetrics()]);
    await expect(
      serveMetrics({ address: parseMetricsAddress(`127.0.0.1:${first.address.port}`), registries: [] }),
    ).rejects.toMatchObject({ code: 'ERR_PORT_IN_USE' });
  });
});

describe('the endpoint', () => {
  it('serves every agent metric, process metrics and the mesh registry; curl scrapes it and promtool passes', async () => {
    const m = new AgentMetrics({ processMetrics: true });
    const mesh = new MeshMetrics();
    // Give each family a sample, as a running agent would.
    m.observe({
      outbox: () => ({ depth: 2, oldestQueuedAt: Date.now() - 90_000 }),
      connections: () => [{ transport: 'tor' }, { transport: 'tor' }, { transport: 'direct' }],
    });
    m.setTorState('up');
    m.torBootstrap.set(1);
    m.messagesSent.inc({ status: 'delivered' });
    m.messagesQueued.inc({ reason: reasonLabel('ERR_SOCKS') });
    m.messagesRefused.inc({ direction: 'in', reason: reasonLabel('a reason a peer made up') });
    m.onionProbes.inc({ result: 'ok' });
    m.pqHandshakeSeconds.observe({ role: 'initiator' }, 0.02);
    mesh.circuitsBuilt.inc();
    const server = await serve([m], [mesh]);

    const r = await curl(server.url);
    expect(r.code).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const lint = promtool(r.body);
    expect(lint.output).toBe('');
    expect(lint.status).toBe(0);

    for (const name of [
      'mmogit_tor_bootstrap_ratio',
      'mmogit_tor_state{state="up"} 1',
      'mmogit_tor_state{state="restarting"} 0',
      'mmogit_onion_probe_success',
      'mmogit_onion_probes_total{result="ok"} 1',
      'mmogit_messages_sent_total{status="delivered"} 1',
      'mmogit_messages_queued_total{reason="ERR_SOCKS"} 1',
      'mmogit_messages_refused_total{direction="in",reason="other"} 1',
      'mmogit_outbox_messages 2',
      'mmogit_peer_connections{transport="tor"} 2',
      'mmogit_peer_connections{transport="direct"} 1',
      'mmogit_pq_handshake_duration_seconds_bucket',
      'mmogit_sync_runs_total',
      'mmogit_discovery_query_duration_seconds',
      'mmogit_sessions_open',
      'mmogit_mesh_circuits_built_total 1',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(r.body, name).toContain(name);
    }
    const age = Number(/^mmogit_outbox_oldest_age_seconds (\S+)$/m.exec(r.body)?.[1]);
    expect(age).toBeGreaterThanOrEqual(89);
    expect(age).toBeLessThan(120);
    // No label value is free text: every label is from a closed set (never an onion or a message id).
    for (const line of r.body.split('\n').filter((l) => l.startsWith('mmogit_'))) {
      for (const [, value] of line.matchAll(/="([^"]*)"/g))
        expect(value, line).toMatch(/^[A-Za-z0-9_.+-]{1,40}$/);
    }
  });

  it('serves /metrics only: other paths 404, other methods 405, HEAD has no body', async () => {
    const server = await serve([new AgentMetrics()]);
    const base = server.url.replace(/\/metrics$/, '');
    expect((await curl(`${base}/`)).code).toBe(404);
    expect((await curl(`${base}/metrics/../secret`, '--path-as-is')).code).toBe(404);
    expect((await curl(server.url, '-X', 'POST', '-d', 'x')).code).toBe(405);
    const head = await curl(server.url, '-I');
    expect(head.code).toBe(200);
    expect(head.body).not.toContain('mmogit_');
  });

  it('idle clients beyond the connection limit are dropped at once, and a scrape still works', async () => {
    const server = await serve([new AgentMetrics()]);
    let closedByServer = 0;
    const sockets = await Promise.all(
      Array.from(
        { length: 40 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(server.address.port, '127.0.0.1', () => resolve(s));
            s.on('close', () => closedByServer++);
            s.on('error', () => resolve(s));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(closedByServer).toBe(40 - METRICS_MAX_CONNECTIONS);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await curl(server.url)).code).toBe(200);
  });

  it('two agents in one process keep their own counts (no global registry)', async () => {
    const a = new AgentMetrics();
    const b = new AgentMetrics();
    a.messagesDelivered.inc(3);
    b.messagesDelivered.inc();
    const [ta, tb] = await Promise.all([(await serve([a])).url, (await serve([b])).url].map((u) => curl(u)));
    expect(ta!.body).toContain('mmogit_messages_delivered_total 3');
    expect(tb!.body).toContain('mmogit_messages_delivered_total 1');
    // promtool also fails a broken exposition, so the check above can fail.
    expect(promtool('mmogit_bad{a="1" 2\n').status).not.toBe(0);
  });
});

describe('examples/grafana-mmogit.json', () => {
  interface Panel {
    title: string;
    targets?: { expr: string }[];
  }
  const exprs = async () => {
    const dash = JSON.parse(await readFile('examples/grafana-mmogit.json', 'utf8')) as { panels: Panel[] };
    return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  };

  it('queries only metrics an agent daemon serves', async () => {
    const m = new AgentMetrics({ processMetrics: true });
    const text = await m.exposition([new MeshMetrics().registry]);
    const served = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => x[1]));
    const list = await exprs();
    expect(list.length).toBeGreaterThan(20);
    for (const { panel, expr } of list) {
      for (const [name] of expr.matchAll(/\b(?:mmogit|process|nodejs)_[a-z0-9_]+/g)) {
        const base = name.replace(/_(bucket|count|sum)$/, '');
        expect(served.has(name) || served.has(base), `${panel}: ${name}`).toBe(true);
      }
    }
  });

  it('every query is valid PromQL (promtool check rules)', async () => {
    const rules = (await exprs()).map(({ expr }, i) => ({
      record: `mmogit:dashboard_query_${i}`,
      expr: expr
        .replaceAll('$__rate_interval', '5m')
        .replaceAll('$__range', '1h')
        .replaceAll('$instance', '.*'),
    }));
    const file = join(tmp, 'dashboard-rules.json');
    // JSON is YAML: promtool reads it as a rules file.
    await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const { stdout } = await run('promtool', ['check', 'rules', file]);
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });
});
