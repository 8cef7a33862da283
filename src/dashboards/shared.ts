/**
 * What every Switchyard dashboard shares: the datasource variable, the engine's job/instance
 * variables, and panel helpers that make a title, a description and a unit mandatory.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as tempo from '@grafana/grafana-foundation-sdk/tempo';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { labelValues } from './promql.ts';

/** Uid of the Prometheus datasource provisioned in grafana/provisioning (the variable's default). */
export const PROMETHEUS_UID = 'prometheus';
/** Uid of the Tempo datasource provisioned in grafana/provisioning. */
export const TEMPO_UID = 'tempo';

/** Panels and targets point at the dashboard's datasource variable, never at a fixed Prometheus. */
export const PROMETHEUS: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
export const TEMPO: common.DataSourceRef = { type: 'tempo', uid: TEMPO_UID };

export const TAGS = ['switchyard'];

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource')
    .label('Prometheus')
    .type('prometheus')
    .current({ selected: true, text: 'Prometheus', value: PROMETHEUS_UID });
}

/** A multi-value variable filled from a label of a catalogue metric, "All" meaning any value (`.*`). */
export function labelVariable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(PROMETHEUS)
    .query({ qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: ['All'], value: ['$__all'] });
}

/**
 * The engine's job and instance. Taken from the oldest-running-age gauge because the engine reports it
 * for every kind all the time (0 when idle), so the variables are filled before any traffic.
 */
export function engineVariables(): dashboard.QueryVariableBuilder[] {
  return [
    labelVariable('job', 'Job', labelValues('executionsOldestRunningAge', 'job')),
    labelVariable('instance', 'Instance', labelValues('executionsOldestRunningAge', 'instance')),
  ];
}

export function newDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(TAGS)
    .editable()
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(
      new dashboard.DashboardLinkBuilder('Switchyard dashboards')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags(TAGS)
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    );
}

export interface Query {
  expr: string;
  legend: string;
  /** Ask Prometheus for exemplars (latency histograms: a dot links to the trace). */
  exemplar?: boolean;
  instant?: boolean;
}

function promTarget(q: Query, index: number): prometheus.DataqueryBuilder {
  const t = new prometheus.DataqueryBuilder()
    .datasource(PROMETHEUS)
    .refId(String.fromCharCode(65 + index))
    .expr(q.expr)
    .legendFormat(q.legend)
    .editorMode(prometheus.QueryEditorMode.Code)
    .exemplar(q.exemplar ?? false);
  return q.instant ? t.instant() : t.range();
}

export interface PanelSpec {
  title: string;
  description: string;
  /** Grafana unit id (s, ops, percentunit, bytes, short, ...). */
  unit: string;
  queries: Query[];
  /** Grid width out of 24 (default 12) and height (default 8). */
  width?: number;
  height?: number;
  min?: number;
  max?: number;
}

function legend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(['mean', 'max', 'lastNotNull']);
}

export function timeseriesPanel(spec: PanelSpec & { stacked?: boolean; bars?: boolean; links?: dashboard.DashboardLinkBuilder[] }): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .unit(spec.unit)
    .datasource(PROMETHEUS)
    .span(spec.width ?? 12)
    .height(spec.height ?? 8)
    .targets(spec.queries.map(promTarget))
    .legend(legend())
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .lineWidth(1)
    .fillOpacity(spec.stacked ? 40 : 10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false);
  if (spec.stacked) p.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (spec.links) p.dataLinks(spec.links);
  if (spec.bars) p.drawStyle(common.GraphDrawStyle.Bars);
  if (spec.min !== undefined) p.min(spec.min);
  if (spec.max !== undefined) p.max(spec.max);
  return p;
}

/** A histogram panel (latency, sizes): exemplars on, so a point on the chart opens its trace in Tempo. */
export function histogramPanel(spec: PanelSpec & { links?: dashboard.DashboardLinkBuilder[] }): timeseries.PanelBuilder {
  return timeseriesPanel({ ...spec, queries: spec.queries.map((q) => ({ ...q, exemplar: true })) });
}

/**
 * A data link that opens Grafana Explore on Tempo with a TraceQL query. `${...}` placeholders in the query
 * (`${__field.labels.x}`, `${__value.raw}`) are left for Grafana to fill in from the clicked series and
 * point; the rest is percent-encoded. The time range is the dashboard's.
 */
export function traceqlExploreLink(title: string, traceql: string): dashboard.DashboardLinkBuilder {
  const panes = {
    a: {
      datasource: TEMPO_UID,
      queries: [{ refId: 'A', datasource: { type: 'tempo', uid: TEMPO_UID }, queryType: 'traceql', query: traceql, limit: 20, tableType: 'traces' }],
      range: { from: '${__from}', to: '${__to}' },
    },
  };
  // Grafana's placeholders must reach it as written: encode everything, then put them back.
  const encoded = encodeURIComponent(JSON.stringify(panes)).replace(/%24%7B([A-Za-z0-9_.]+)%7D/g, (_, name: string) => `\${${name}}`);
  return new dashboard.DashboardLinkBuilder(title).url(`/explore?schemaVersion=1&orgId=1&panes=${encoded}`).targetBlank(true);
}

export type ThresholdSteps = { value: number | null; color: string }[];

/** Thresholds for a value where higher is worse (error and timeout ratios, queue usage). */
export function higherIsWorse(warn: number, crit: number): ThresholdSteps {
  return [{ value: null, color: 'green' }, { value: warn, color: 'orange' }, { value: crit, color: 'red' }];
}

/** Thresholds for a value where lower is worse (success ratios). */
export function lowerIsWorse(crit: number, warn: number): ThresholdSteps {
  return [{ value: null, color: 'red' }, { value: crit, color: 'orange' }, { value: warn, color: 'green' }];
}

export function statPanel(spec: PanelSpec & { thresholds?: ThresholdSteps }): stat.PanelBuilder {
  const p = new stat.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .unit(spec.unit)
    .datasource(PROMETHEUS)
    .span(spec.width ?? 6)
    .height(spec.height ?? 8)
    .targets(spec.queries.map(promTarget))
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  if (spec.min !== undefined) p.min(spec.min);
  if (spec.max !== undefined) p.max(spec.max);
  p.thresholds(
    new dashboard.ThresholdsConfigBuilder()
      .mode(dashboard.ThresholdsMode.Absolute)
      .steps(spec.thresholds ?? [{ value: null, color: 'blue' }]),
  );
  return p;
}

/**
 * A table of recent traces from Tempo for a TraceQL query; each row opens the trace.
 * The unit applies to no column of its own (Tempo's frames carry their own duration unit).
 */
export function tracesPanel(spec: { title: string; description: string; traceql: string; width?: number; height?: number; limit?: number }): table.PanelBuilder {
  return new table.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .unit('none')
    .datasource(TEMPO)
    .span(spec.width ?? 24)
    .height(spec.height ?? 8)
    .withTarget(
      new tempo.DataqueryBuilder()
        .datasource(TEMPO)
        .refId('A')
        .queryType('traceql')
        .query(spec.traceql)
        .tableType(tempo.SearchTableType.Traces)
        .limit(spec.limit ?? 20),
    );
}

export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title);
}
