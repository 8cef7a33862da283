/**
 * All Switchyard dashboards, their JSON as committed under grafana/dashboards/, and every query in
 * them (for the lint test and for the stack tests that run each query against a real Prometheus/Tempo).
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { agentsDashboard } from './agents.ts';
import { executionOverviewDashboard } from './execution-overview.ts';
import { pipelineHealthDashboard } from './pipeline-health.ts';
import { runtimeToolsDashboard } from './runtime-tools.ts';
import { workflowLifecycleDashboard } from './workflow-lifecycle.ts';

export { EXTERNAL_METRICS, externalSeriesNames } from './external.ts';

/** Builders in the order the README lists them. */
export const DASHBOARD_BUILDERS: readonly (() => Dashboard)[] = [
  runtimeToolsDashboard,
  executionOverviewDashboard,
  workflowLifecycleDashboard,
  pipelineHealthDashboard,
  agentsDashboard,
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type DashboardJson = { [k: string]: Json };
type PanelJson = { [k: string]: Json };

/** Panels in layout order, rows included, with the panels nested in collapsed rows. */
function flattenPanels(panels: Json | undefined): PanelJson[] {
  if (!Array.isArray(panels)) return [];
  return panels.flatMap((p) => {
    const panel = p as PanelJson;
    return [panel, ...flattenPanels(panel['panels'])];
  });
}

/** Recursively sorted keys: the JSON is the same whatever order the SDK sets fields in. */
function sortKeys(value: unknown): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value as Json;
}

/** A dashboard as committed: panel ids numbered in layout order, keys sorted. */
export function toDashboardJson(built: Dashboard): DashboardJson {
  const plain = JSON.parse(JSON.stringify(built)) as DashboardJson;
  flattenPanels(plain['panels']).forEach((panel, i) => {
    panel['id'] = i + 1;
  });
  return sortKeys(plain) as DashboardJson;
}

export function buildDashboards(): DashboardJson[] {
  return DASHBOARD_BUILDERS.map((build) => toDashboardJson(build()));
}

/** The file content of a dashboard: two-space indentation, trailing newline. */
export function renderDashboard(d: DashboardJson): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

export function dashboardFileName(d: DashboardJson): string {
  return `${String(d['uid'])}.json`;
}

export interface DashboardQuery {
  /** Dashboard uid. */
  dashboard: string;
  dashboardTitle: string;
  panel: string;
  panelType: string;
  refId: string;
  /** PromQL or TraceQL, with dashboard variables ($__rate_interval, $job, ...) still in it. */
  expr: string;
  datasource: 'prometheus' | 'tempo';
  /** PromQL queries of latency panels ask for exemplars. */
  exemplar: boolean;
  instant: boolean;
}

function panelQueries(d: DashboardJson, panel: PanelJson): DashboardQuery[] {
  const targets = Array.isArray(panel['targets']) ? (panel['targets'] as PanelJson[]) : [];
  return targets.map((t) => {
    const ds = (t['datasource'] ?? panel['datasource']) as { type?: string } | null;
    const type = ds?.type === 'tempo' ? 'tempo' : 'prometheus';
    return {
      dashboard: String(d['uid']),
      dashboardTitle: String(d['title']),
      panel: String(panel['title']),
      panelType: String(panel['type']),
      refId: String(t['refId'] ?? ''),
      expr: String(type === 'tempo' ? t['query'] : t['expr']),
      datasource: type,
      exemplar: t['exemplar'] === true,
      instant: t['instant'] === true,
    };
  });
}

/** Every query of every panel of every dashboard. */
export function allDashboardQueries(dashboards: DashboardJson[] = buildDashboards()): DashboardQuery[] {
  return dashboards.flatMap((d) => flattenPanels(d['panels']).flatMap((p) => panelQueries(d, p)));
}

export function allPanels(d: DashboardJson): PanelJson[] {
  return flattenPanels(d['panels']);
}

export interface DashboardVariableQuery {
  dashboard: string;
  variable: string;
  /** A `label_values(...)` query with other variables still in it. */
  query: string;
}

/** The template variables filled by a Prometheus query (label_values over catalogue metrics). */
export function allVariableQueries(dashboards: DashboardJson[] = buildDashboards()): DashboardVariableQuery[] {
  return dashboards.flatMap((d) => {
    const list = ((d['templating'] as PanelJson | undefined)?.['list'] ?? []) as PanelJson[];
    return list
      .filter((v) => v['type'] === 'query')
      .map((v) => ({ dashboard: String(d['uid']), variable: String(v['name']), query: String(v['definition']) }));
  });
}

/**
 * The expression as Prometheus would receive it with every variable at "All": the rate window at
 * `rateInterval` and every `$var` / `${var}` regex variable at `.*` (the dashboards' allValue).
 */
export function substituteVariables(expr: string, opts: { rateInterval?: string; values?: Record<string, string> } = {}): string {
  const window = opts.rateInterval ?? '1m';
  const values = opts.values ?? {};
  return expr
    .replaceAll('$__rate_interval', window)
    .replaceAll('${__rate_interval}', window)
    .replaceAll('$__interval', window)
    .replaceAll('${__interval}', window)
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (_all, a: string | undefined, b: string | undefined) => values[(a ?? b)!] ?? '.*');
}
