/**
 * The dashboards' TraceQL: every query parses with the real grammar (@grafana/lezer-traceql), and
 * translates to Jaeger searches for catalogue spans, which is how the stack tests run them (CI has Jaeger,
 * not Tempo). The negative controls show that the parser and the translator can fail.
 */
import { describe, expect, it } from 'vitest';
import { allDashboardQueries, allPanels, buildDashboards } from '../../src/dashboards/index.ts';
import { AGENT_SLOWEST_TRACES_TRACEQL, agentSlowestTracesTraceql } from '../../src/dashboards/agents.ts';
import { SLOW_SYNC_REQUESTS_TRACEQL } from '../../src/dashboards/execution-overview.ts';
import { FAILED_TOOL_CALLS_TRACEQL, SLOW_TOOL_CALLS_TRACEQL } from '../../src/dashboards/runtime-tools.ts';
import { FAILED_RUNS_TRACEQL } from '../../src/dashboards/workflow-lifecycle.ts';
import { SPANS } from '../../src/telemetry/catalog.ts';
import { traceqlSyntaxErrors, traceqlToJaegerSearches } from '../support/traceql.ts';

const dashboards = buildDashboards();
const tempoQueries = allDashboardQueries(dashboards).filter((q) => q.datasource === 'tempo');
const SPAN_NAMES: string[] = Object.values(SPANS).map((s) => s.name);

describe('dashboard TraceQL', () => {
  it('has the TraceQL queries of every dashboard with a traces panel', () => {
    expect(tempoQueries.length).toBeGreaterThanOrEqual(4);
    const withTempoPanel = dashboards
      .filter((d) => allPanels(d).some((p) => (p['datasource'] as { type?: string } | undefined)?.type === 'tempo'))
      .map((d) => String(d['uid']));
    expect(withTempoPanel.length).toBeGreaterThan(0);
    for (const uid of withTempoPanel) expect(tempoQueries.some((q) => q.dashboard === uid), uid).toBe(true);
  });

  it.each(tempoQueries.map((q) => [`${q.dashboard} / ${q.panel}`, q.expr]))('%s parses and translates to catalogue spans', (_, expr) => {
    expect(traceqlSyntaxErrors(expr)).toEqual([]);
    const searches = traceqlToJaegerSearches(expr);
    expect(searches.length).toBeGreaterThan(0);
    for (const s of searches) expect(SPAN_NAMES, s.spanName).toContain(s.spanName);
  });

  it('translates the four dashboard constants exactly', () => {
    expect(traceqlToJaegerSearches(SLOW_TOOL_CALLS_TRACEQL)).toStrictEqual([{ spanName: 'runtime.execute_tool', minDurationMs: 1000 }]);
    expect(traceqlToJaegerSearches(FAILED_TOOL_CALLS_TRACEQL)).toStrictEqual([{ spanName: 'runtime.execute_tool', status: 'error' }]);
    expect(traceqlToJaegerSearches(FAILED_RUNS_TRACEQL)).toStrictEqual([{ spanName: 'workflow.execute', status: 'error' }]);
    // `name =~ "a|b|c"`: one Jaeger search per span name.
    expect(traceqlToJaegerSearches(SLOW_SYNC_REQUESTS_TRACEQL)).toStrictEqual([
      { spanName: 'workflow.execute_sync', minDurationMs: 5000 },
      { spanName: 'task.execute_sync', minDurationMs: 5000 },
      { spanName: 'agent.execute_sync', minDurationMs: 5000 },
    ]);
  });

  it('the link from an agent to its slowest traces: Explore on Tempo with the agent\'s TraceQL, the agent and its p95 left to Grafana', () => {
    const agents = dashboards.find((d) => d['uid'] === 'switchyard-agents')!;
    const links = allPanels(agents).flatMap((p) => ((p['fieldConfig'] as { defaults?: { links?: { title: string; url: string }[] } } | undefined)?.defaults?.links ?? []));
    expect(links.map((l) => l.title)).toEqual(['Slowest traces of ${__field.labels.gen_ai_agent_name}']);
    const url = new URL(links[0]!.url, 'http://grafana');
    expect(url.pathname).toBe('/explore');
    const pane = JSON.parse(url.searchParams.get('panes')!).a;
    expect(pane.datasource).toBe('tempo');
    expect(pane.queries[0]).toMatchObject({ queryType: 'traceql', query: AGENT_SLOWEST_TRACES_TRACEQL });
    expect(pane.range).toEqual({ from: '${__from}', to: '${__to}' });
    // As Grafana fills it in for a point of triage_classifier at 0.25 s:
    const filled = agentSlowestTracesTraceql('triage_classifier', 0.25);
    expect(traceqlSyntaxErrors(filled)).toEqual([]);
    expect(traceqlToJaegerSearches(filled)).toStrictEqual([
      { spanName: 'agent.execute_sync', minDurationMs: 250, attributes: { 'gen_ai.agent.name': 'triage_classifier' } },
    ]);
  });

  it('translates span attribute conditions (span.x = "..."), checked on the spans Jaeger returns', () => {
    expect(traceqlToJaegerSearches('{ name = "agent.execute_sync" && span.gen_ai.agent.name = "triage_classifier" && duration >= 0.25s }')).toStrictEqual([
      { spanName: 'agent.execute_sync', minDurationMs: 250, attributes: { 'gen_ai.agent.name': 'triage_classifier' } },
    ]);
  });

  it('translates the rest of the subset: >=, units, ok/unset, parentheses, condition order, comments', () => {
    expect(traceqlToJaegerSearches('{ (status = ok) && duration >= 250us && name = "task.execute" } // why')).toStrictEqual([
      { spanName: 'task.execute', minDurationMs: 0.25, status: 'ok' },
    ]);
    expect(traceqlToJaegerSearches('{ name = `agent.model_call` && duration > 2m && status = unset }')).toStrictEqual([
      { spanName: 'agent.model_call', minDurationMs: 120_000, status: 'unset' },
    ]);
  });
});

describe('negative controls', () => {
  it.each(['{ name = "x" && }', '{ duration > }', '{ name = "x"', 'name = "x"', '{ duration > 1h30m }'])('%s is a syntax error', (q) => {
    expect(traceqlSyntaxErrors(q).length).toBeGreaterThan(0);
    expect(() => traceqlToJaegerSearches(q)).toThrow(/TraceQL syntax error/);
  });

  it.each([
    ['{ .tool_id = "x" } >> { name = "y" }', /Desc \(">>"\)/],
    ['{ name = "x" } && { name = "y" }', /And \("&&"\)/],
    ['{ name = "x" } | count() > 1', /Pipe \("\|"\)/],
    ['{ name = "x" || status = error }', /Or \("\|\|"\)/],
    ['{ name = "x" && .tool_id = "t" }', /condition \.tool_id = "t"/],
    ['{ name = "x" && resource.service.name = "t" }', /condition resource\.service\.name = "t"/],
    ['{ name = "x" && span.tool = 3 }', /condition span\.tool = 3/],
    ['{ name = "x" && span.tool =~ "a|b" }', /condition span\.tool =~ "a\|b"/],
    ['{ name = "x" && span.a = "1" && span.a = "2" }', /a second condition on the same field/],
    ['{ name != "x" }', /condition name != "x"/],
    ['{ name =~ "workflow.*" }', /regex name =~ "workflow.\*"/],
    ['{ duration < 1s && name = "x" }', /condition duration < 1s/],
    ['{ status = 2 && name = "x" }', /condition status = 2/],
    ['{ name = "x" && name = "y" }', /a second condition on the same field/],
    ['{ duration > 1s }', /spanset without a name condition/],
    ['{}', /empty spanset/],
  ])('%s is refused by the translator', (q, message) => {
    expect(traceqlSyntaxErrors(q)).toEqual([]); // valid TraceQL, just outside the subset
    expect(() => traceqlToJaegerSearches(q)).toThrow(message);
  });
});
