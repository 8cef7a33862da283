/**
 * grafana/provisioning: fixed datasource uids, exemplar and trace links, and `$$` escaping (Grafana
 * expands $VAR and ${VAR} from its environment in provisioning files).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSeriesNames } from '../../src/dashboards/external.ts';
import { METRICS } from '../../src/telemetry/catalog.ts';
import { DEFAULT_METRIC_EXPORT_INTERVAL_MS } from '../../src/telemetry/sdk.ts';
import { readYaml, repoPath } from './tools.ts';

interface Datasource {
  name: string;
  uid: string;
  type: string;
  url: string;
  jsonData: Record<string, unknown>;
}

const DATASOURCES = 'grafana/provisioning/datasources/datasources.yaml';
const datasources = readYaml<{ datasources: Datasource[] }>(DATASOURCES).datasources;
const byUid = (uid: string) => datasources.find((d) => d.uid === uid);

describe('grafana provisioning', () => {
  it('provides Prometheus, Tempo, Loki and Alertmanager under fixed uids', () => {
    expect(datasources.map((d) => [d.uid, d.type])).toEqual([
      ['prometheus', 'prometheus'],
      ['tempo', 'tempo'],
      ['loki', 'loki'],
      ['alertmanager', 'alertmanager'],
    ]);
  });

  it('links a span to the log lines of its trace in Loki, by the trace_id Loki keeps as structured metadata', () => {
    const link = byUid('tempo')?.jsonData['tracesToLogsV2'] as {
      datasourceUid: string; customQuery: boolean; query: string; tags: Array<{ key: string; value: string }>;
    };
    expect(link.datasourceUid).toBe('loki');
    expect(byUid(link.datasourceUid)?.type).toBe('loki');
    // A custom query: the default one looks for the trace id in the line's text, where OTLP records do not have it.
    expect(link.customQuery).toBe(true);
    // $$ is the provisioning file's escape of $ (see below): Grafana sees ${__tags} and ${__span.traceId}.
    expect(link.query).toBe('{$${__tags}} | trace_id="$${__span.traceId}"');
    // Loki turns the resource attribute service.name into the index label service_name.
    expect(link.tags).toEqual([{ key: 'service.name', value: 'service_name' }]);
  });

  it('links a Loki log line to its trace in Tempo from the trace_id structured metadata', () => {
    const loki = byUid('loki');
    const compose = readYaml<{ services: Record<string, { ports?: string[] }> }>('docker-compose.yml');
    expect(loki?.url).toBe('http://loki:3100');
    expect(compose.services['loki']?.ports).toContain('127.0.0.1:3100:3100');
    const fields = loki?.jsonData['derivedFields'] as Array<{ matcherType: string; matcherRegex: string; datasourceUid: string; url: string }>;
    expect(fields).toEqual([expect.objectContaining({ matcherType: 'label', matcherRegex: 'trace_id', datasourceUid: 'tempo', url: '$${__value.raw}' })]);
    expect(byUid('tempo')?.type).toBe('tempo');
  });

  it('links Prometheus exemplars (trace_id, as the OTLP receiver stores them) to Tempo', () => {
    const destinations = byUid('prometheus')?.jsonData['exemplarTraceIdDestinations'] as Array<{ name: string; datasourceUid: string }>;
    expect(destinations.map((d) => [d.name, d.datasourceUid])).toEqual([['trace_id', 'tempo']]);
  });

  it("queries only series that exist in traces-to-metrics (span metrics of the Collector, catalogue metrics)", () => {
    const queries = (byUid('tempo')?.jsonData['tracesToMetrics'] as { queries: Array<{ query: string }> }).queries;
    const known = new Set([...externalSeriesNames(), ...Object.values(METRICS).flatMap((spec) =>
      spec.kind === 'histogram' ? [`${spec.name}_bucket`, `${spec.name}_sum`, `${spec.name}_count`] : [spec.name])]);
    for (const { query } of queries) {
      const names = [...query.matchAll(/([a-z_:][a-z0-9_:]*)\{/g)].map((match) => match[1]!);
      expect(names.length, query).toBeGreaterThan(0);
      for (const name of names) expect(known.has(name), `${name} in ${query}`).toBe(true);
    }
  });

  it('floors $__rate_interval at no less than the engine\'s metric export interval, wherever the stack runs', () => {
    const timeIntervalS = Number(/^(\d+)s$/.exec(String(byUid('prometheus')?.jsonData['timeInterval']))?.[1]);
    const compose = readYaml<{ services: Record<string, { environment?: Record<string, string> }> }>('docker-compose.yml');
    const composeMs = Number(compose.services['engine']?.environment?.['OTEL_METRIC_EXPORT_INTERVAL']);
    expect(timeIntervalS).toBeGreaterThan(0);
    for (const intervalMs of [DEFAULT_METRIC_EXPORT_INTERVAL_MS, composeMs]) expect(intervalMs).toBeLessThanOrEqual(timeIntervalS * 1000);
  });

  it('gives Tempo traces-to-metrics, a service map and the node graph on Prometheus', () => {
    const json = byUid('tempo')?.jsonData ?? {};
    expect((json['tracesToMetrics'] as { datasourceUid: string }).datasourceUid).toBe('prometheus');
    expect((json['serviceMap'] as { datasourceUid: string }).datasourceUid).toBe('prometheus');
    expect((json['nodeGraph'] as { enabled: boolean }).enabled).toBe(true);
    expect(byUid('alertmanager')?.jsonData['implementation']).toBe('prometheus');
  });

  it('escapes every `$` meant for Grafana as `$$` in provisioning files', () => {
    const dir = repoPath('grafana/provisioning');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const text = readFileSync(`${dir}/${file}`, 'utf8')
        .split('\n')
        .filter((line) => !line.trimStart().startsWith('#'))
        .join('\n');
      // After removing escaped `$$`, no `$` may remain: Grafana would expand it from its environment.
      expect(text.replaceAll('$$', ''), file).not.toContain('$');
    }
    expect(readFileSync(repoPath(DATASOURCES), 'utf8')).toContain('{$$__tags}');
  });

  it('loads dashboards from the directory docker compose mounts grafana/dashboards on', () => {
    const providers = readYaml<{ providers: Array<{ type: string; options: { path: string } }> }>(
      'grafana/provisioning/dashboards/switchyard.yaml',
    ).providers;
    expect(providers).toHaveLength(1);
    expect(providers[0]?.type).toBe('file');
    expect(providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
    const compose = readYaml<{ services: Record<string, { volumes: string[] }> }>('docker-compose.yml');
    expect(compose.services['grafana']?.volumes).toContain('./grafana/dashboards:/var/lib/grafana/dashboards:ro');
  });
});
