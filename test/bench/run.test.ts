// The bench runner's pure parts: goal lookup and evaluation, placeholders, rendering, arguments. No timing
// assertions here (speed goals live in `npm run bench` only); one test spawns the real CLI through the cli
// benchmark with one sample to check the result's shape.
import { describe, expect, it } from 'vitest';
import { parseArgs, selected } from '../../bench/_args.js';
import { fromExports, isBenchModule } from '../../bench/_loader.js';
import { fmt, type RunInfo, renderMarkdown, renderTable, sortAreas } from '../../bench/_render.js';
import {
  areaOf,
  convertUnit,
  evaluate,
  missingTargets,
  rowFor,
  ruleFor,
  ruleFromResult,
  TARGETS,
} from '../../bench/_targets.js';
import type { BenchResult, BenchRow } from '../../bench/_types.js';
import { benchTorAddressColdStart } from '../../bench/cli.js';
import { within } from '../../bench/run.js';

const result = (r: Partial<BenchResult> & { name: string }): BenchResult => ({
  value: 1,
  unit: 'ms',
  command: 'node dist/bench/x.js',
  ...r,
});

describe('bench runner: goals', () => {
  it('derives the area from the module name', () => {
    expect(areaOf('memory-sync')).toBe('memory');
    expect(areaOf('pqc-tor.js')).toBe('pqc');
    expect(areaOf('discovery_tor.ts')).toBe('discovery');
    expect(areaOf('tor')).toBe('tor');
  });

  it('converts time units and refuses the others', () => {
    expect(convertUnit(2, 's', 'ms')).toBe(2000);
    expect(convertUnit(1500, 'µs', 'ms')).toBe(1.5);
    expect(convertUnit(3, 'MB/s', 'MB/s')).toBe(3);
    expect(convertUnit(3, 'MB/s', 'ms')).toBeUndefined();
  });

  it('checks value goals at the limit, and in another time unit', () => {
    const rule = ruleFor('memory', 'memory: no-op sync (nothing new)');
    expect(rule?.id).toBe('memory.sync-noop');
    expect(evaluate(result({ name: 'x', value: 50 }), rule)).toEqual({ target: '≤ 50 ms', verdict: 'PASS' });
    expect(evaluate(result({ name: 'x', value: 50.1 }), rule).verdict).toBe('MISS');
    expect(evaluate(result({ name: 'x', value: 0.049, unit: 's' }), rule).verdict).toBe('PASS');
    expect(evaluate(result({ name: 'x', value: 0.051, unit: 's' }), rule).verdict).toBe('MISS');
    // a value in a unit that cannot be converted gets no verdict rather than a wrong one
    expect(evaluate(result({ name: 'x', value: 1, unit: 'MB' }), rule).verdict).toBe('');
  });

  it('checks the former absolute time goals as ratios against their same-run anchors', () => {
    const cli = ruleFor('cli', 'cli: `mmogit tor address` cold start');
    expect(cli?.id).toBe('cli.tor-address');
    // a slow value on a loaded machine is no miss when node itself was as slow
    expect(evaluate(result({ name: 'x', value: 900, ratio: 1.8 }), cli)).toEqual({
      target: 'ratio ≤ 1.8',
      verdict: 'PASS',
    });
    expect(evaluate(result({ name: 'x', value: 300, ratio: 1.81 }), cli).verdict).toBe('MISS');
    const handshake = ruleFor('pqc', 'pq-handshake-cpu');
    expect([handshake?.id, handshake?.on]).toEqual(['pqc.handshake-cpu', 'ratio']);
    const recall = ruleFor('memory', 'recall/verify 10,000 memories');
    expect([recall?.id, recall?.on]).toEqual(['memory.recall-verify-10k', 'ratio']);
    for (const rule of TARGETS) expect(rule.on === 'ratio' || rule.unit !== undefined).toBe(true);
  });

  it('checks ratio goals in both directions', () => {
    const transport = ruleFor('transport', 'transport: 10 MB A→B over the agent libp2p stream');
    expect(transport?.id).toBe('transport.10mb');
    expect(evaluate(result({ name: 'x', ratio: 0.9 }), transport).verdict).toBe('PASS');
    expect(evaluate(result({ name: 'x', ratio: 0.89 }), transport).verdict).toBe('MISS');
    const rtt = ruleFor('messaging', 'messaging.send-round-trip.tor');
    expect(rtt?.id).toBe('messaging.round-trip');
    expect(evaluate(result({ name: 'x', ratio: 1.6 }), rtt)).toEqual({
      target: 'ratio ≤ 1.5',
      verdict: 'MISS',
    });
    const pipelined = ruleFor('messaging', 'messaging.pipelined-sends-100.tor');
    expect(pipelined?.id).toBe('messaging.pipelined');
    expect(evaluate(result({ name: 'x', ratio: 0.5 }), pipelined).verdict).toBe('PASS');
    expect(evaluate(result({ name: 'x', ratio: 0.49 }), pipelined).verdict).toBe('MISS');
    // no ratio: no verdict
    expect(evaluate(result({ name: 'x' }), rtt).verdict).toBe('');
  });

  it('tells the sync goals apart and keeps goals inside their area', () => {
    expect(ruleFor('memory', 'memory: sync 1,000 new memories vs git fetch')?.id).toBe('memory.sync-time');
    expect(ruleFor('memory', 'memory: sync bytes on the wire vs git fetch')?.id).toBe('memory.sync-bytes');
    expect(ruleFor('memory', 'memory: no-op sync')?.id).toBe('memory.sync-noop');
    expect(ruleFor('memory', 'memory: remember 10,000 vs git fast-import')?.id).toBe('memory.remember-10k');
    expect(ruleFor('discovery', 'discovery: discover, 50 nodes on loopback')?.id).toBe(
      'discovery.loopback-50',
    );
    expect(ruleFor('discovery', 'discovery: discover, 10 agents over tor')?.id).toBe('discovery.tor-10');
    expect(ruleFor('discovery', 'discovery: publish latency over tor')).toBeUndefined();
    expect(ruleFor('tor', 'cli: `mmogit tor address` cold start')).toBeUndefined();
  });

  it('reads an unknown goal from the result: the field nearest the target, direction from the unit', () => {
    const thr = ruleFromResult('x', result({ name: 'a', value: 12, unit: 'MB/s', ratio: 0.95, target: 0.9 }));
    expect([thr?.on, thr?.op]).toEqual(['ratio', '>=']);
    const cpu = ruleFromResult('x', result({ name: 'b', value: 5.4, ratio: 1.26, target: 5 }));
    expect([cpu?.on, cpu?.op, cpu?.unit]).toEqual(['value', '<=', 'ms']);
    const rtt = ruleFromResult('x', result({ name: 'c', value: 30, ratio: 1.05, target: 1.1 }));
    expect([rtt?.on, rtt?.op]).toEqual(['ratio', '<=']);
    // far from both, but a target ≤ 2 is a ratio
    const far = ruleFromResult('x', result({ name: 'f', value: 89, ratio: 94.9, target: 1.1 }));
    expect([far?.on, far?.op]).toEqual(['ratio', '<=']);
    const hinted = ruleFromResult(
      'x',
      result({ name: 'd', value: 0.5, ratio: 0.5, target: 0.4, targetOn: 'value', targetOp: '>=' }),
    );
    expect([hinted?.on, hinted?.op]).toEqual(['value', '>=']);
    expect(ruleFromResult('x', result({ name: 'e' }))).toBeUndefined();
  });

  it('builds rows: table goal first, context-only rows get no verdict', () => {
    const loop = rowFor('pqc', 'pqc/benchPqThroughput', {
      name: 'pq-channel-throughput',
      value: 40,
      unit: 'MiB/s',
      anchor: 200,
      ratio: 0.2,
      target: 0.9,
      command: 'c',
      notes: 'loopback',
    });
    expect(loop.verdict).toBe('');
    expect(loop.target).toBeUndefined();
    expect(loop.notes).toMatch(/^loopback; context only/);
    const tor = rowFor('pqc', 'pqc-tor/benchPqThroughputTor', {
      name: 'pq-channel-throughput-tor',
      value: 2.8,
      unit: 'MiB/s',
      anchor: 3.1,
      ratio: 0.92,
      target: 0.9,
      command: 'c',
    });
    expect([tor.verdict, tor.target]).toEqual(['PASS', 'ratio ≥ 0.9']);
    const ping = rowFor('messaging', 'messaging/benchPing', {
      name: 'messaging.ping-round-trip.tor',
      value: 25,
      unit: 'ms',
      anchor: 21,
      ratio: 1.21,
      target: 1.2,
      command: 'c',
    });
    expect([ping.verdict, ping.target]).toEqual(['MISS', 'ratio ≤ 1.2']);
  });

  it('lists every goal no measured row covers, limited to the selected areas', () => {
    expect(missingTargets([]).map((r) => r.name)).toEqual(TARGETS.map((t) => t.label));
    const cli = rowFor('cli', 'cli/b', result({ name: 'cli: `mmogit tor address` cold start', value: 100 }));
    const error: BenchRow = {
      area: 'memory',
      source: 'memory/b',
      name: 'memory/b',
      verdict: 'ERROR',
      error: 'boom',
    };
    const missing = missingTargets([cli, error], new Set(['cli', 'memory']));
    expect(missing.every((r) => r.verdict === 'NOT MEASURED')).toBe(true);
    expect(missing.map((r) => r.area)).not.toContain('cli');
    expect(missing.filter((r) => r.area === 'memory')).toHaveLength(
      TARGETS.filter((t) => t.area === 'memory').length,
    );
    expect(missing[0]?.notes).toMatch(/failed/);
  });
});

describe('bench runner: rendering and arguments', () => {
  it('formats numbers by magnitude', () => {
    expect(fmt(12345.6)).toBe('12,346');
    expect(fmt(42.345)).toBe('42.3');
    expect(fmt(1.2345)).toBe('1.23');
    expect(fmt(0.12345)).toBe('0.123');
    expect(fmt(undefined)).toBe('');
    expect(fmt(Number.NaN)).toBe('');
  });

  it('renders a table with units, ratios, verdicts, errors and escaped pipes', () => {
    const rows: BenchRow[] = [
      rowFor('cli', 'cli/b', result({ name: 'a | b', value: 120, anchor: 60, ratio: 2, target: 150 })),
      { area: 'cli', source: 'cli/c', name: 'cli/c', verdict: 'ERROR', error: 'spawn failed' },
    ];
    const lines = renderTable(rows).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe('| a \\| b | 120 ms | 60 ms | 2× | ≤ 150 ms | **PASS** |');
    expect(lines[3]).toBe('| cli/c | — |  |  |  | ERROR |');
  });

  it('renders the document: header, areas in order, notes with commands, summary', () => {
    const info: RunInfo = {
      date: '2026-01-01T00:00:00Z',
      command: 'npm run bench',
      machine: { cpus: 2, cpuModel: 'cpu', memoryGiB: 8, platform: 'Linux' },
      software: { node: 'v20', tor: 'Tor version 0.4.9.11', git: 'git version 2.39.5' },
      network: '4 authorities',
      seconds: 300,
    };
    const rows = [
      rowFor('tor', 'tor/b', result({ name: 'tor: our overhead', value: 900, target: 1000 })),
      rowFor(
        'cli',
        'cli/b',
        result({ name: 'cli: `mmogit tor address` cold start', value: 200, ratio: 2.5, notes: 'n' }),
      ),
      ...missingTargets([], new Set(['memory'])),
    ];
    const doc = renderMarkdown(info, sortRows(rows));
    expect(doc).toContain('Generated by `npm run bench` on 2026-01-01T00:00:00Z');
    expect(doc).toContain('- Machine: 2 CPUs (cpu), 8 GiB RAM, Linux');
    expect(doc).toContain('Tor version 0.4.9.11');
    expect(doc).toMatch(/Summary: 1 PASS, 1 MISS, 0 ERROR, \d+ not measured/);
    const headings = [...doc.matchAll(/^## (\w+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(['cli', 'memory', 'tor']);
    expect(doc).toContain('n; command: `node dist/bench/x.js`; `b` in bench/cli.ts');
    expect(doc.endsWith('\n')).toBe(true);
  });

  it('parses the runner options', () => {
    expect(parseArgs([])).toEqual({ json: false, list: false, help: false });
    const o = parseArgs(['--only', 'cli, pqc', '--only=tor', '--json', '--timeout', '5', '--no-write']);
    expect(o).toMatchObject({ only: ['cli', 'pqc', 'tor'], json: true, timeoutMs: 5000, write: false });
    expect(parseArgs(['--out=/tmp/x.md', '--write']).out).toBe('/tmp/x.md');
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument/);
    expect(() => parseArgs(['--only'])).toThrow(/needs a value/);
    expect(() => parseArgs(['--timeout', '0'])).toThrow(/positive/);
  });

  it('selects by area, module, function or module/function', () => {
    expect(selected(undefined, 'pqc-tor', 'benchX')).toBe(true);
    expect(selected(['pqc'], 'pqc-tor', 'benchX')).toBe(true);
    expect(selected(['pqc-tor'], 'pqc-tor', 'benchX')).toBe(true);
    expect(selected(['benchx'], 'pqc-tor', 'benchX')).toBe(true);
    expect(selected(['pqc-tor/benchX'], 'pqc-tor', 'benchX')).toBe(true);
    expect(selected(['tor'], 'pqc-tor', 'benchX')).toBe(false);
    expect(sortAreas(['zeta', 'tor', 'cli', 'alpha', 'tor'])).toEqual(['cli', 'tor', 'alpha', 'zeta']);
  });
});

describe('bench runner: modules and bounds', () => {
  const run = { benchA: async () => result({ name: 'a' }) };

  it('reads the `bench` declaration a module exports, and says why when there is none', () => {
    const m = fromExports('pqc-tor.js', {
      bench: { name: 'pqc-tor', needsTor: true, run, timeoutMs: 5_000 },
    });
    expect(m).toMatchObject({ name: 'pqc-tor', area: 'pqc', needsTor: true, timeoutMs: 5_000 });
    expect(m.benches.map(([fn]) => fn)).toEqual(['benchA']);
    expect(m.error).toBeUndefined();
    // what the old runner guessed from source text is no longer read at all
    const none = fromExports('tor.js', { benchTorStart: run.benchA, MMOGIT_TEST_NETWORK: 'x' });
    expect(none).toMatchObject({ name: 'tor', needsTor: false, benches: [] });
    expect(none.error).toMatch(/bench/);
    expect(isBenchModule({ name: 'x', needsTor: 'yes', run })).toBe(false);
    expect(isBenchModule({ name: 'x', needsTor: false, run: { a: 1 } })).toBe(false);
    expect(isBenchModule({ name: 'x', needsTor: false, run, timeoutMs: 0 })).toBe(false);
  });

  it('fails a stuck step with a message at its bound, and fires its signal', async () => {
    let seen: AbortSignal | undefined;
    const t = performance.now();
    const err = await within(
      (signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      },
      50,
      'pqc-tor/benchStuck',
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('pqc-tor/benchStuck did not finish within 0.05 s');
    expect(seen?.aborted).toBe(true);
    expect(performance.now() - t).toBeLessThan(10_000); // the promise never settles by itself
    await expect(within(async () => 7, 1_000, 'quick')).resolves.toBe(7);
  });
});

describe('cli benchmark', () => {
  it('spawns the real CLI (after init) and returns a well-formed result', async () => {
    const r = await benchTorAddressColdStart({ runs: 1, warmup: 0 });
    expect(r.name).toMatch(/tor address/);
    expect(r.unit).toBe('ms');
    expect(r.value).toBeGreaterThan(0);
    expect(r.anchor).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.value / (r.anchor as number), 1);
    expect(ruleFor('cli', r.name)?.id).toBe('cli.tor-address');
  }, 60_000);
});

function sortRows(rows: BenchRow[]): BenchRow[] {
  const order = sortAreas(rows.map((r) => r.area));
  return [...rows].sort((a, b) => order.indexOf(a.area) - order.indexOf(b.area));
}
