/**
 * Dashboards: the committed JSON is what the TypeScript generates, every panel follows the house
 * rules, every query uses only catalogue (or allowlisted stack) metric names, and every PromQL
 * expression parses with the real promtool.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  allDashboardQueries, allPanels, allVariableQueries, buildDashboards, EXTERNAL_METRICS, externalSeriesNames,
  substituteVariables, type DashboardJson, type DashboardQuery,
} from '../../src/dashboards/index.ts';
import { generate } from '../../src/dashboards/generate.ts';
import { counterRate, m, quantile } from '../../src/dashboards/promql.ts';
import { METRICS } from '../../src/telemetry/catalog.ts';

const dashboards = buildDashboards();
const queries = allDashboardQueries(dashboards);
const promQueries = queries.filter((q) => q.datasource === 'prometheus');
const tempoQueries = queries.filter((q) => q.datasource === 'tempo');

const EXPECTED = {
  'switchyard-runtime-tools': 'Switchyard / Runtime Tools',
  'switchyard-execution-overview': 'Switchyard / Execution Overview',
  'switchyard-workflow-lifecycle': 'Switchyard / Workflow Lifecycle',
  'switchyard-pipeline-health': 'Switchyard / Pipeline Health',
  'switchyard-agents': 'Switchyard / Agents & Models',
};

/** Series names a query may select: catalogue names (histograms by their series) and the stack's allowlist. */
const CATALOGUE_SERIES = new Set(
  Object.values(METRICS).flatMap((s) => (s.kind === 'histogram' ? [`${s.name}_bucket`, `${s.name}_sum`, `${s.name}_count`] : [s.name])),
);
const ALLOWED_SERIES = new Set([...CATALOGUE_SERIES, ...externalSeriesNames()]);

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * Metric names selected by a PromQL expression: identifiers that are neither functions (followed by
 * a parenthesis), keywords, label names in grouping clauses or matchers, nor inside strings.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice(match.index + word.length).trimStart();
    if (after.startsWith('(')) continue;
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

const where = (q: DashboardQuery) => `${q.dashboard} / "${q.panel}" ${q.refId}: ${q.expr}`;

describe('dashboards regenerate', () => {
  it('the committed grafana/dashboards/*.json are exactly what the TypeScript generates', () => {
    const { changed } = generate({ check: true });
    expect(changed, 'run: node src/dashboards/generate.ts').toEqual([]);
  });

  it('`node src/dashboards/generate.ts --check` exits 0 on the committed files', () => {
    const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../../src/dashboards/generate.ts'), '--check'], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('Dashboards are up to date.');
    expect(r.status).toBe(0);
  });

  it('--check mode reports edited, missing and stray files and writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-dashboards-gen-'));
    try {
      expect(generate({ check: false, dir }).changed).toHaveLength(Object.keys(EXPECTED).length);
      expect(generate({ check: true, dir }).changed).toEqual([]);
      writeFileSync(join(dir, 'switchyard-runtime-tools.json'), '{}\n');
      rmSync(join(dir, 'switchyard-pipeline-health.json'));
      writeFileSync(join(dir, 'old-uid.json'), '{}\n');
      const changed = ['old-uid.json', 'switchyard-pipeline-health.json', 'switchyard-runtime-tools.json'];
      expect(generate({ check: true, dir }).changed).toEqual(changed);
      expect(generate({ check: true, dir }).changed).toEqual(changed);
      expect(generate({ check: false, dir }).changed).toEqual(changed);
      expect(generate({ check: true, dir }).changed).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('building twice gives identical JSON (stable ids and key order)', () => {
    expect(JSON.stringify(buildDashboards())).toBe(JSON.stringify(dashboards));
  });

  it('has the five dashboards with their fixed uids and titles', () => {
    expect(Object.fromEntries(dashboards.map((d) => [d['uid'], d['title']]))).toEqual(EXPECTED);
  });
});

describe('dashboard lint', () => {
  const panelsOf = (d: DashboardJson) => allPanels(d).filter((p) => p['type'] !== 'row');

  it('every panel has a title, a description and a unit', () => {
    const bad: string[] = [];
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        const unit = ((p['fieldConfig'] as { defaults?: { unit?: string } } | undefined)?.defaults?.unit ?? '').trim();
        const title = String(p['title'] ?? '').trim();
        const description = String(p['description'] ?? '').trim();
        if (!title || !description || !unit) bad.push(`${String(d['uid'])} / "${title}" (description ${description ? 'ok' : 'missing'}, unit ${unit || 'missing'})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('panel titles are unique within a dashboard and every panel has a query', () => {
    for (const d of dashboards) {
      const titles = panelsOf(d).map((p) => String(p['title']));
      expect(new Set(titles).size, String(d['uid'])).toBe(titles.length);
      for (const p of panelsOf(d)) expect((p['targets'] as unknown[] | undefined)?.length ?? 0, String(p['title'])).toBeGreaterThan(0);
    }
  });

  it('every PromQL query uses the datasource variable', () => {
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        for (const t of (p['targets'] ?? []) as { datasource?: { type?: string; uid?: string } }[]) {
          if (t.datasource?.type === 'tempo') continue;
          expect(t.datasource, `${String(d['uid'])} / ${String(p['title'])}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
          expect(p['datasource']).toEqual({ type: 'prometheus', uid: '${datasource}' });
        }
      }
    }
  });

  it('the datasource variable is of type prometheus with default uid "prometheus"', () => {
    for (const d of dashboards) {
      const list = (d['templating'] as { list: { name: string; type: string; query: unknown; current: { value: unknown } }[] }).list;
      const ds = list.find((v) => v.name === 'datasource');
      expect(ds, String(d['uid'])).toMatchObject({ type: 'datasource', query: 'prometheus', current: { value: 'prometheus' } });
    }
  });

  it('every rate, irate and increase window is $__rate_interval', () => {
    const bad = promQueries.filter((q) => {
      if (!/\b(rate|irate|increase)\s*\(/.test(q.expr)) return false;
      const windows = [...q.expr.matchAll(/\[([^\]]*)\]/g)].map((w) => w[1]);
      return windows.length === 0 || windows.some((w) => w !== '$__rate_interval');
    });
    expect(bad.map(where)).toEqual([]);
  });

  it('every PromQL query selects only catalogue metrics or the stack allowlist', () => {
    const bad: string[] = [];
    for (const q of promQueries) {
      const names = metricNames(q.expr);
      if (names.length === 0) bad.push(`${where(q)} (no metric)`);
      for (const n of names) if (!ALLOWED_SERIES.has(n)) bad.push(`${where(q)} (${n})`);
    }
    expect(bad).toEqual([]);
  });

  it('the metric-name extraction the lint relies on sees through functions, groupings and matchers', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, tool_id) (rate(a_bucket{job=~"x|y", tool_id="by"}[$__rate_interval])))')).toEqual(['a_bucket']);
    expect(metricNames('(sum by (k) (rate(a_total[1m]))) / ((sum by (k) (rate(b_count[1m]))) > 0) or vector(0)')).toEqual(['a_total', 'b_count']);
  });

  it('engine metrics and labels are typed by the catalogue (a rename breaks the typecheck)', () => {
    expect(m('toolExecuteSeconds')).toBe('runtime_tool_execute_seconds');
    // `npm test` runs tsc over test/: each line below must stay a type error.
    // @ts-expect-error not a catalogue metric
    expect(() => m('runtimeToolExecuteSeconds')).toThrow();
    // @ts-expect-error runtime_tool_timeouts_total has no outcome label
    counterRate('toolTimeouts', ['outcome']);
    // @ts-expect-error a counter is not a histogram
    quantile(0.95, 'toolErrors');
  });

  it('every histogram (latency, size) query asks for exemplars', () => {
    const bad = promQueries.filter((q) => (/histogram_quantile\s*\(/.test(q.expr) || /_bucket\b/.test(q.expr)) && !q.exemplar);
    expect(bad.map(where)).toEqual([]);
  });

  it('every engine query is filtered by the job and instance variables', () => {
    const engine = promQueries.filter((q) => metricNames(q.expr).some((n) => CATALOGUE_SERIES.has(n)));
    expect(engine.length).toBeGreaterThan(0);
    const bad = engine.filter((q) => !q.expr.includes('job=~"$job"') || !q.expr.includes('instance=~"$instance"'));
    expect(bad.map(where)).toEqual([]);
  });

  it('template variables come from label_values over catalogue metrics', () => {
    const vars = allVariableQueries(dashboards);
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) {
      const match = /^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?, *([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(v.query);
      expect(match, `${v.dashboard} $${v.variable}: ${v.query}`).not.toBeNull();
      expect(CATALOGUE_SERIES.has(match![1]!), `${v.dashboard} $${v.variable}: ${v.query}`).toBe(true);
    }
    const names = (uid: string) => vars.filter((v) => v.dashboard === uid).map((v) => v.variable);
    expect(names('switchyard-runtime-tools')).toEqual(['job', 'instance', 'tool_id']);
    expect(names('switchyard-execution-overview')).toEqual(['job', 'instance', 'workflow_id']);
  });

  it('every dashboard variable a query uses is defined on its dashboard', () => {
    for (const d of dashboards) {
      const defined = new Set(((d['templating'] as { list: { name: string }[] }).list).map((v) => v.name));
      for (const q of queries.filter((x) => x.dashboard === d['uid'])) {
        for (const [, a, b] of q.expr.matchAll(/\$\{(\w+)\}|\$(\w+)/g)) {
          const name = (a ?? b)!;
          if (name.startsWith('__')) continue;
          expect(defined.has(name), `${where(q)} uses $${name}`).toBe(true);
        }
      }
    }
  });

  it('has trace panels on the tempo datasource with TraceQL span filters', () => {
    expect(tempoQueries.map((q) => q.panel)).toContain('Slow tool calls');
    expect(tempoQueries.find((q) => q.panel === 'Slow tool calls')?.expr).toBe('{ name = "runtime.execute_tool" && duration > 1s }');
    for (const q of tempoQueries) {
      // A light structural check; the stack tests run each query against a real Tempo.
      expect(q.expr, where(q)).toMatch(/^\{ .+ \}$/);
      expect((q.expr.match(/"/g) ?? []).length % 2, where(q)).toBe(0);
      expect(q.expr, where(q)).not.toMatch(/\$/);
    }
    for (const d of dashboards) {
      for (const p of allPanels(d).filter((x) => (x['datasource'] as { type?: string } | undefined)?.type === 'tempo')) {
        expect(p['datasource']).toEqual({ type: 'tempo', uid: 'tempo' });
      }
    }
  });

  it('the external allowlist names the stack components only', () => {
    // The spanmetrics connector's namespace is traces.span.metrics (traces_span_metrics_* in Prometheus).
    const prefix = (component: string) => (component === 'spanmetrics' ? 'traces_span_metrics_' : `${component}_`);
    for (const [name, spec] of Object.entries(EXTERNAL_METRICS)) {
      expect(name === 'up' || name.startsWith(prefix(spec.component)), name).toBe(true);
    }
  });

  it('substituteVariables turns a dashboard query into plain PromQL', () => {
    expect(substituteVariables('rate(a{job=~"$job", t=~"${tool_id}"}[$__rate_interval])')).toBe('rate(a{job=~".*", t=~".*"}[1m])');
  });
});

/**
 * promtool from PROMTOOL_BIN or the binaries helper (scripts/stack/binaries.ts, which builds a
 * missing binary only under CI or SWITCHYARD_STACK_BUILD=1).
 */
async function findPromtool(): Promise<{ path?: string; reason: string }> {
  if (process.env['PROMTOOL_BIN']) {
    return existsSync(process.env['PROMTOOL_BIN'])
      ? { path: process.env['PROMTOOL_BIN'], reason: '' }
      : { reason: `PROMTOOL_BIN=${process.env['PROMTOOL_BIN']} does not exist` };
  }
  const support = resolve(import.meta.dirname, '../../scripts/stack/binaries.ts');
  if (!existsSync(support)) return { reason: 'PROMTOOL_BIN is not set and scripts/stack/binaries.ts does not exist yet' };
  try {
    const mod = (await import(pathToFileURL(support).href)) as {
      findStackBinary?: (name: 'promtool') => { path?: string; reason?: string };
      stackBinaries: () => { promtool: string };
    };
    if (mod.findStackBinary) {
      const found = mod.findStackBinary('promtool');
      return found.path ? { path: found.path, reason: '' } : { reason: found.reason ?? 'promtool not found' };
    }
    const bins = mod.stackBinaries();
    return existsSync(bins.promtool) ? { path: bins.promtool, reason: '' } : { reason: `stackBinaries().promtool=${bins.promtool} does not exist` };
  } catch (err) {
    return { reason: `stackBinaries() failed: ${(err as Error).message}` };
  }
}

function rulesFile(exprs: string[]): string {
  const rules = exprs.map((expr, i) => `      - record: dashboard_query_${i}\n        expr: ${JSON.stringify(expr)}\n`).join('');
  return `groups:\n  - name: dashboard_queries\n    rules:\n${rules}`;
}

/** `promtool check rules` over a rules file that records each expression; parse errors fail it. */
function checkExpressions(promtool: string, exprs: string[]): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-dashboards-'));
  try {
    const file = join(dir, 'dashboard-queries.yml');
    writeFileSync(file, rulesFile(exprs));
    const r = spawnSync(promtool, ['check', 'rules', '--lint=none', file], { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('PromQL parses with promtool', () => {
  let promtool: { path?: string; reason: string } = { reason: 'not looked up' };
  beforeAll(async () => {
    promtool = await findPromtool();
    if (!promtool.path && process.env['CI']) throw new Error(`promtool is required under CI: ${promtool.reason}`);
    if (!promtool.path) console.warn(`[dashboards] skipping promtool parse checks: ${promtool.reason}`);
  }, 20 * 60_000);

  it('promtool rejects a syntax error (the check can fail)', (ctx) => {
    if (!promtool.path) return ctx.skip(`promtool not available: ${promtool.reason}`);
    expect(checkExpressions(promtool.path, ['sum(rate(up[1m])) by (job']).ok).toBe(false);
    expect(checkExpressions(promtool.path, ['histogram_quantile(0.95, rate(x_bucket[5m])) by (tool_id)']).ok).toBe(false);
  });

  it('every dashboard PromQL expression, with variables substituted, parses', (ctx) => {
    if (!promtool.path) return ctx.skip(`promtool not available: ${promtool.reason}`);
    const exprs = promQueries.map((q) => substituteVariables(q.expr));
    const result = checkExpressions(promtool.path, exprs);
    if (!result.ok) {
      const failing = exprs.map((e, i) => ({ e, i, r: checkExpressions(promtool.path!, [e]) })).filter((x) => !x.r.ok);
      throw new Error(`promtool rejected:\n${failing.map((f) => `${where(promQueries[f.i]!)}\n  ${f.r.output.trim()}`).join('\n')}`);
    }
    expect(result.output).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });

  it('every template variable selector parses', (ctx) => {
    if (!promtool.path) return ctx.skip(`promtool not available: ${promtool.reason}`);
    const selectors = allVariableQueries(dashboards).map((v) => substituteVariables(/^label_values\((.*), *\w+\)$/.exec(v.query)![1]!));
    const result = checkExpressions(promtool.path, selectors);
    expect(result.ok, result.output).toBe(true);
  });
});
